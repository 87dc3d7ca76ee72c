"""Where transformers models come from: the local Hugging Face cache, the hub (on request), GGUF files.

Nothing here downloads unless the user ran ``lmassist models pull``: loading always passes
``local_files_only=True``. A GGUF is converted once (dequantizing it is slow on a CPU) and the
result is kept as safetensors in our cache, keyed by the file's identity so that a changed GGUF
is converted again. Only the standard library is imported at module level: ``lmassist models list``
reads the HF cache folder by hand instead of importing ``huggingface_hub``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lmassist.config import paths
from lmassist.errors import LMAssistError
from lmassist.generation import ProgressCallback

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
# What a transformers model needs from a hub repo; skips duplicate TF/Flax/ONNX/GGUF weights.
PULL_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.py"]
GGUF_CACHE_VERSION = "1"  # bump when the way we convert changes, to invalidate old caches


def hub_cache_dir() -> Path:
    """The HF hub cache, honouring the same variables ``huggingface_hub`` does."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def _repo_folder(repo_id: str) -> Path:
    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def cached_snapshot(repo_id: str) -> Path | None:
    """The newest cached snapshot of ``repo_id`` that has a config.json, or None."""
    snaps = _repo_folder(repo_id) / "snapshots"
    if not snaps.is_dir():
        return None
    found = [s for s in snaps.iterdir() if (s / "config.json").exists()]
    return max(found, key=lambda s: s.stat().st_mtime) if found else None


def cached_hub_models() -> dict[str, Path]:
    """Causal language models in the local HF cache: repo id -> snapshot folder."""
    root = hub_cache_dir()
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for repo in sorted(root.glob("models--*")):
        repo_id = repo.name[len("models--"):].replace("--", "/")
        snap = cached_snapshot(repo_id)
        if snap is None:
            continue
        try:
            archs = json.loads((snap / "config.json").read_text(encoding="utf-8")).get("architectures") or []
        except (OSError, ValueError, AttributeError):
            continue
        if not archs or any(str(a).endswith(CAUSAL_SUFFIXES) for a in archs):
            found[repo_id] = snap
    return found


def folder_size(folder: Path) -> int:
    """Bytes of weights in a model folder (following the HF cache's symlinks)."""
    total = 0
    for p in folder.iterdir():
        if p.suffix in (".safetensors", ".bin") and p.exists():
            total += p.stat().st_size
    return total


# -- pulling ---------------------------------------------------------------------------------------


def hub_unreachable_message(repo_id: str) -> str:
    return (
        f"cannot reach the Hugging Face hub to pull {repo_id}: pull it on a connected machine "
        f"(huggingface-cli download {repo_id}) and copy ~/.cache/huggingface, or use a local folder "
        "or GGUF: lmassist ask -m hf:/path/to/folder"
    )


def pull_hub_model(repo_id: str, progress: ProgressCallback | None = None) -> Path:
    """Download a hub model into the HF cache (the user asked: ``lmassist models pull``)."""
    try:
        from huggingface_hub import errors as hf_errors
        from huggingface_hub import snapshot_download
    except ImportError:
        raise LMAssistError("pulling hub models needs huggingface_hub: pip install 'lmassist[hf]'") from None
    try:
        folder = snapshot_download(repo_id, allow_patterns=PULL_PATTERNS, tqdm_class=_progress_class(progress))
    except hf_errors.GatedRepoError:
        raise LMAssistError(f"{repo_id} is gated on the hub: accept its terms and log in (hf auth login)") from None
    except hf_errors.RepositoryNotFoundError:
        raise LMAssistError(f"there is no model {repo_id} on the Hugging Face hub (or it is private)") from None
    except hf_errors.RevisionNotFoundError:
        raise LMAssistError(f"{repo_id} has no main revision on the hub") from None
    except hf_errors.OfflineModeIsEnabled:
        raise LMAssistError(hub_unreachable_message(repo_id) + " (HF_HUB_OFFLINE is set)") from None
    except (OSError, hf_errors.HfHubHTTPError):
        # LocalEntryNotFoundError (no connection, nothing cached) and network errors alike.
        raise LMAssistError(hub_unreachable_message(repo_id)) from None
    except Exception as e:  # noqa: BLE001 - httpx errors differ across huggingface_hub versions
        if "connect" in type(e).__name__.lower() or "timeout" in type(e).__name__.lower():
            raise LMAssistError(hub_unreachable_message(repo_id)) from None
        raise
    path = Path(folder)
    if not list(path.glob("*.safetensors")):
        raise LMAssistError(
            f"{repo_id} has no safetensors weights; lmassist loads no pickled checkpoints "
            "(convert it with save_pretrained(safe_serialization=True) and use the folder)"
        )
    return path


def _progress_class(progress: ProgressCallback | None) -> Any:
    """A tqdm class that draws nothing and forwards byte counts to our ``progress(done, total)``."""
    if progress is None:
        return None
    from tqdm import tqdm

    class _Forward(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["file"] = io.StringIO()
            kwargs["disable"] = False
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            result = super().update(n)
            if self.unit == "B":
                try:
                    progress(int(self.n), int(self.total) if self.total else None)
                except Exception:  # noqa: BLE001 - a drawing failure must not abort a download
                    pass
            return result

    return _Forward


# -- GGUF conversion cache -------------------------------------------------------------------------


def gguf_cache_key(path: Path) -> str:
    """Changes whenever the file does: size, mtime and a hash of its first and last MiB.

    Hashing all of a multi-GB GGUF on every load would cost seconds; size + mtime + the header
    (which holds the metadata) + the tail catches a replaced or edited file in practice.
    """
    st = path.stat()
    h = hashlib.sha256(f"{GGUF_CACHE_VERSION}:{st.st_size}:{st.st_mtime_ns}".encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    # The name part says which file (so stale conversions of it can be found), the hash which version.
    where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    stem = re.sub(r"[^\w.]", "_", path.stem)[:60]
    return f"{stem}_{where}-{h.hexdigest()[:16]}"


def gguf_cache_root() -> Path:
    return paths().cache / "hf-gguf"


def gguf_architecture(path: Path) -> str:
    """``general.architecture`` from a GGUF's header, or '' when it cannot be read."""
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).fields.get("general.architecture")
        return bytes(field.parts[field.data[0]]).decode("utf-8") if field else ""
    except Exception:  # noqa: BLE001 - only used to word an error message
        return ""


def converted_gguf(path: Path, convert: Any) -> tuple[Path, bool]:
    """The cached safetensors folder for ``path``, converting it first if needed.

    ``convert(folder)`` writes the model and tokenizer into ``folder``. It runs in a temporary
    folder that is renamed into place only when complete, so an interrupted conversion never
    leaves a half-written cache; stale conversions of the same file name are removed. Returns
    ``(folder, converted_now)``.
    """
    root = gguf_cache_root()
    key = gguf_cache_key(path)
    final = root / key
    if (final / "config.json").exists():
        return final, False
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.tmp-"))
    try:
        convert(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "config.json").exists():  # someone else's half-made folder: replace it
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    stem = key.rsplit("-", 1)[0]
    for old in root.glob(f"{stem}-*"):
        if old.name != key and old.is_dir() and old.name.rsplit("-", 1)[0] == stem:
            shutil.rmtree(old, ignore_errors=True)
    return final, True


def note(message: str) -> None:
    """A short status line on stderr for slow first-time steps, only when a person is watching."""
    if sys.stderr is not None and sys.stderr.isatty():
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
