"""A checkpoint is a folder, readable without pickle and written so that a crash never corrupts it.

::

    NAME/
      config.json              model settings, tokenizer kind, quantization, training summary
      tokenizer.json           the tokenizer (see tokenizers.py)
      model.safetensors        the weights (the best by validation loss)
      history.json             the loss curve: one row per validation
      train_state.safetensors  optional: latest weights + AdamW moments, for --resume

Writing goes to a temporary sibling folder which then replaces the old one by rename, so readers see
the old checkpoint or the new one, never half of one. Loading uses safetensors only; every missing
or damaged file becomes a one-line :class:`~lmassist.errors.ModelLoadError` that names it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from lmassist.errors import ModelLoadError
from lmassist.inhouse.int8 import dequantize_state
from lmassist.inhouse.model import ModelConfig, build_model, config_from_dict, config_to_dict
from lmassist.inhouse.tokenizers import Tokenizer, tokenizer_from_json

FORMAT = "lmassist-inhouse"
CONFIG, TOKENIZER, WEIGHTS, HISTORY, TRAIN_STATE = (
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "history.json",
    "train_state.safetensors",
)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode), its tokenizer, and what config.json says."""

    path: Path
    model: nn.Module
    tokenizer: Tokenizer
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def quantization(self) -> str | None:
        return self.config.get("quantization")


@dataclass
class TrainState:
    """What a run being resumed takes from its checkpoint folder (see ``train --resume``)."""

    config: dict[str, Any]
    tokenizer: Tokenizer
    model_config: ModelConfig
    tensors: dict[str, torch.Tensor]  # ``model.*`` weights and ``optim.*`` AdamW moments
    history: list[dict[str, Any]]


def unique_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict without aliases (a tied weight appears once), contiguous, ready for safetensors."""
    seen: set[tuple[int, tuple[int, ...]]] = set()
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr() + t.storage_offset() * t.element_size(), tuple(t.shape))
        if key in seen and t.numel() > 0:
            continue
        seen.add(key)
        out[name] = t.detach().contiguous().cpu()
    return out


def save_checkpoint(
    folder: str | Path,
    config: dict[str, Any],
    tokenizer: Tokenizer,
    weights: dict[str, torch.Tensor],
    history: list[dict[str, Any]] | None = None,
    train_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write a checkpoint folder atomically. ``config`` must hold ``model`` (the model settings)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        config = {"format": FORMAT, "format_version": 1, **config, "tokenizer": tokenizer.kind}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / TOKENIZER).write_text(tokenizer.to_json(), encoding="utf-8")
        save_file(unique_state(weights), str(tmp / WEIGHTS), metadata={"format": "pt"})
        (tmp / HISTORY).write_text(json.dumps(history or [], indent=1) + "\n", encoding="utf-8")
        if train_state is not None:
            save_file(unique_state(train_state), str(tmp / TRAIN_STATE), metadata={"format": "pt"})
        for f in tmp.iterdir():
            f.chmod(0o644)  # mkdtemp makes private files; a model is ordinary data
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        tmp.chmod(0o755)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _swap_in(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by ``tmp``: move the old one aside, rename the new one in, delete the old."""
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
        old.rmdir()
        os.rename(folder, old)
    os.rename(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def rewrite_config(folder: Path, config: dict[str, Any]) -> None:
    """Update config.json in place (atomically) without rewriting the weights."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, folder / CONFIG)


def read_config(folder: str | Path) -> dict[str, Any]:
    """config.json of a checkpoint, checked just enough to know it is one of ours."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"no in-house checkpoint at {folder}")
    path = folder / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing") from None
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is corrupt: {_first_line(e)}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or not isinstance(config.get("model"), dict):
        raise ModelLoadError(f"{path} is not an lmassist in-house checkpoint config")
    return config


def read_tokenizer(folder: Path) -> Tokenizer:
    path = folder / TOKENIZER
    try:
        return tokenizer_from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path} is missing") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{path} is corrupt: {_first_line(e)}") from None


def read_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing")
    try:
        return load_file(str(path), device=str(device))
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for damaged files
        raise ModelLoadError(f"{path} is corrupt: {_first_line(e)}") from None


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Copy ``tensors`` into ``model``; shapes must match and only tied aliases may be absent."""
    expected = model.state_dict()
    aliases = set(expected) - set(unique_state(expected))
    missing = set(expected) - set(tensors) - aliases
    extra = set(tensors) - set(expected)
    if missing or extra:
        what = f"missing {sorted(missing)[:3]}" if missing else f"unexpected {sorted(extra)[:3]}"
        raise ModelLoadError(f"{source} does not match config.json ({what})")
    for name, t in tensors.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise ModelLoadError(
                f"{source} does not match config.json: {name} is {tuple(t.shape)}, "
                f"expected {tuple(expected[name].shape)} (vocabulary or size mismatch?)"
            )
    model.load_state_dict(tensors, strict=False)


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint folder for inference (eval mode, on ``device``)."""
    folder = Path(folder)
    config = read_config(folder)
    tokenizer = read_tokenizer(folder)
    try:
        model_config = config_from_dict(config["model"])
    except (ValueError, TypeError) as e:
        raise ModelLoadError(f"{folder / CONFIG} has bad model settings: {_first_line(e)}") from None
    if model_config.vocab_size != tokenizer.vocab_size:
        raise ModelLoadError(
            f"vocabulary mismatch in {folder}: the model has {model_config.vocab_size} tokens, "
            f"{TOKENIZER} has {tokenizer.vocab_size}"
        )
    tensors = read_tensors(folder / WEIGHTS)
    quant = config.get("quantization")
    if quant == "int8":  # int8 on disk, fp32 in memory (see optimize.py for why)
        model = load_int8(model_config, tensors, folder / WEIGHTS)
    elif quant:
        raise ModelLoadError(f"{folder / CONFIG}: unknown quantization {quant!r}")
    else:
        model = build_model(model_config)
        load_weights(model, tensors, folder / WEIGHTS)
    model.to(device)
    model.eval()
    history = read_history(folder)
    return Checkpoint(folder, model, tokenizer, config, history)


def load_int8(config: ModelConfig, tensors: dict[str, torch.Tensor], source: Path) -> nn.Module:
    """Rebuild a model saved as int8 (:mod:`lmassist.inhouse.int8`): int8 on disk, fp32 (and full
    speed) in memory."""
    try:
        weights = dequantize_state(tensors)
    except ValueError as e:
        raise ModelLoadError(f"{source} is damaged: {e}") from None
    model = build_model(config)
    load_weights(model, weights, source)
    return model


def read_train_state(folder: Path) -> TrainState:
    """The latest weights, optimizer moments, settings and history saved for ``--resume``."""
    config = read_config(folder)
    return TrainState(config, read_tokenizer(folder), config_from_dict(config["model"]),
                      read_tensors(folder / TRAIN_STATE), read_history(folder))


def read_history(folder: Path) -> list[dict[str, Any]]:
    path = folder / HISTORY
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is corrupt: {_first_line(e)}") from None
    return data if isinstance(data, list) else []


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    return config_to_dict(model.config)  # type: ignore[arg-type]


def folder_size(folder: str | Path, names: tuple[str, ...] = (CONFIG, TOKENIZER, WEIGHTS)) -> int:
    """Bytes a model needs on disk (by default without history and training state)."""
    return sum((Path(folder) / n).stat().st_size for n in names if (Path(folder) / n).exists())


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]
