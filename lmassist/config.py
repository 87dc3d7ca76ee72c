"""Where lmassist keeps its files, and the user's settings.

Everything lives under the platform's usual folders (platformdirs). ``LMASSIST_HOME`` moves all of
it at once (tests, portable installs); ``LMASSIST_CONFIG_DIR``, ``LMASSIST_DATA_DIR``,
``LMASSIST_CACHE_DIR`` and ``LMASSIST_MODELS_DIR`` move one folder each and win over the home.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmassist.errors import LMAssistError

APP = "lmassist"
DEFAULT_MODEL = "llamacpp:smollm2-135m-instruct"


@dataclass(frozen=True)
class Paths:
    config: Path
    data: Path
    cache: Path
    models: Path

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def history_db(self) -> Path:
        return self.data / "history.db"

    @classmethod
    def from_env(cls) -> Paths:
        env = os.environ
        home = env.get("LMASSIST_HOME")
        if home:
            base = Path(home).expanduser()
            config, data, cache = base / "config", base / "data", base / "cache"
        else:
            import platformdirs

            config = Path(platformdirs.user_config_dir(APP))
            data = Path(platformdirs.user_data_dir(APP))
            cache = Path(platformdirs.user_cache_dir(APP))
        config = Path(env.get("LMASSIST_CONFIG_DIR") or config).expanduser()
        data = Path(env.get("LMASSIST_DATA_DIR") or data).expanduser()
        cache = Path(env.get("LMASSIST_CACHE_DIR") or cache).expanduser()
        models = Path(env.get("LMASSIST_MODELS_DIR") or data / "models").expanduser()
        return cls(config=config, data=data, cache=cache, models=models)


def paths() -> Paths:
    return Paths.from_env()


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that a crash leaves either the old or the new content, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_warned: set[str] = set()


def warn(message: str) -> None:
    """One ``Warning:`` line on stderr, once per process: a damaged side file is read many times."""
    if message in _warned:
        return
    _warned.add(message)
    if sys.stderr is not None:
        try:
            sys.stderr.write(f"Warning: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


# -- names that become paths -----------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})


def valid_name(name: str, what: str = "model name") -> str:
    """``name`` if it is safe as one file or folder name, else a one-line error.

    Model names, template names, collection names and the like end up as paths
    (``models/NAME.gguf``); one rule for all of them keeps ``../`` and ``a/b`` from ever reaching
    the file system: letters, digits, ``-``, ``_`` and ``.``, starting with a letter or digit, at
    most 128 characters, and not a name Windows reserves.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".") \
            or name.split(".")[0].lower() in _RESERVED:
        shown = name if isinstance(name, str) else repr(name)
        raise LMAssistError(
            f"invalid {what} {shown!r}: use letters, digits, '-', '_' and '.' (starting with a letter or "
            "digit, at most 128 characters; no '/', '..' or ':')"
        )
    return name


# -- settings --------------------------------------------------------------------------------------

MAX_N_CTX = 1 << 20


@dataclass(frozen=True)
class SettingSpec:
    """What a known setting holds: its type, its allowed values, its default and what it is for."""

    key: str
    kind: str  # "int", "float", "bool", "str", "choice", "model", "auto-int"
    default: Any
    meaning: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    note: str = ""

    def allowed(self) -> str:
        """The allowed values in words, for ``settings`` and for error messages."""
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "bool":
            return "true | false"
        if self.kind == "model":
            auto = "auto or " if self.default == "auto" else ""
            return f"{auto}a model name from 'lmassist models list'"
        if self.kind in ("int", "float", "auto-int"):
            fmt = "{:g}" if self.kind == "float" else "{:d}"
            lo = "" if self.minimum is None else fmt.format(self.minimum)
            hi = "" if self.maximum is None else fmt.format(self.maximum)
            span = f"{lo}..{hi}" if hi else f">= {lo}" if lo else "any"
            kind = "an integer" if self.kind != "float" else "a number"
            text = f"auto or {kind} {span}" if self.kind == "auto-int" else f"{kind} {span}"
            return f"{text} ({self.note})" if self.note else text
        return "text"

    def parse(self, value: Any) -> Any:
        """The value in its stored type, or a one-line error that names the allowed values."""
        def bad() -> LMAssistError:
            return LMAssistError(f"invalid value {value!r} for {self.key}: expected {self.allowed()}")

        text = value.strip() if isinstance(value, str) else value
        if self.kind == "bool":
            if isinstance(text, bool):
                return text
            if isinstance(text, str) and text.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
                return text.lower() in ("true", "yes", "on", "1")
            raise bad()
        if self.kind == "choice":
            if isinstance(text, str) and text.lower() in self.choices:
                return text.lower()
            raise bad()
        if self.kind in ("str", "model"):
            if isinstance(text, str) and text and "\n" not in text:
                return text
            raise bad()
        if self.kind == "auto-int" and isinstance(text, str) and text.lower() == "auto":
            return "auto"
        number = _number(text, integer=self.kind != "float")
        if number is None:
            raise bad()
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise bad()
        return number


def _number(value: Any, integer: bool) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            return None
    if isinstance(value, float) and (not math.isfinite(value) or (integer and not value.is_integer())):
        return None
    if isinstance(value, int | float):
        return int(value) if integer else float(value)
    return None


SETTINGS: dict[str, SettingSpec] = {s.key: s for s in (
    SettingSpec("default_model", "model", DEFAULT_MODEL, "the model used when no -m is given"),
    *(SettingSpec(f"tasks.{task}.model", "model", "auto",
                  f"the model {task} uses without -m (auto: the best installed model measured able, "
                  "see 'lmassist models rank')") for task in ("sentiment", "qa", "summarize", "translate")),
    SettingSpec("llamacpp.n_ctx", "int", 4096, "context window in tokens (capped at the model's own maximum)",
                256, MAX_N_CTX, note="at most the model's own context length is used"),
    SettingSpec("llamacpp.threads", "auto-int", "auto", "compute threads (auto: from the cores and the load)", 1, 1024),
    SettingSpec("llamacpp.extra_buffers", "choice", "auto",
                "llama.cpp's repacked weight buffers (auto: off on CPUs where they are known to crash, e.g. AMX)",
                choices=("auto", "on", "off")),
    SettingSpec("llamacpp.n_gpu_layers", "int", "auto", "layers offloaded to the GPU (-1: all, 0: none)", -1, 100000),
    SettingSpec("hf.device", "str", "auto", "where transformers models run: auto, cpu, cuda, cuda:N, mps"),
    SettingSpec("hf.dtype", "choice", "auto", "weights dtype of transformers models",
                choices=("auto", "float32", "float16", "bfloat16")),
    SettingSpec("hf.threads", "auto-int", "auto", "torch threads for transformers models", 1, 1024),
    SettingSpec("hf.trust_remote_code", "bool", False, "let a transformers model run Python code shipped with it"),
    SettingSpec("inhouse.device", "str", "auto", "where in-house models run: auto, cpu, cuda, cuda:N, mps"),
    SettingSpec("inhouse.threads", "auto-int", "auto", "torch threads for in-house models", 1, 1024),
)}

_HF_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def parse_setting(key: str, value: Any) -> Any:
    """Check one setting before it is stored: a known key must hold a value of its type and range;
    an unknown ``BACKEND.KEY`` (a plugin's) stays free-form but typed (JSON numbers, true/false)."""
    spec = SETTINGS.get(key)
    if spec is None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key):
            raise LMAssistError(f"invalid setting name {key!r}: use dotted words such as llamacpp.n_ctx")
        return value
    parsed = spec.parse(value)
    if key in ("hf.device", "inhouse.device") and not _HF_DEVICE.fullmatch(parsed):
        raise LMAssistError(f"invalid value {value!r} for {key}: expected auto, cpu, cuda, cuda:N or mps")
    return parsed


class Settings:
    """The user's settings: a small JSON file of dotted keys (``default_model``, ``hf.device``...).

    A damaged file costs only the settings: a warning line says it is ignored and the defaults
    apply; the file is kept (moved aside on the next ``set``) so nothing the user wrote is lost.
    A stored value a hand edit broke is ignored the same way, key by key.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths().settings_file
        self.values: dict[str, Any] = {}
        self.damaged: str | None = None
        try:
            raw = self.path.read_bytes() if self.path.is_file() else None
        except OSError as e:
            raw, self.damaged = None, e.strerror or str(e)
        if raw is not None:
            try:
                loaded = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                loaded, self.damaged = None, str(e).splitlines()[0] if str(e) else type(e).__name__
            if loaded is not None and not isinstance(loaded, dict):
                self.damaged = "it does not hold a JSON object"
            elif loaded is not None:
                self.values = loaded
        elif self.path.exists() and self.damaged is None:
            self.damaged = "it is not a regular file"
        if self.damaged:
            warn(f"settings file {self.path} is damaged ({self.damaged}); ignored, using the defaults")

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key, default)
        if key in SETTINGS and key in self.values:
            try:
                return parse_setting(key, value)
            except LMAssistError as e:
                warn(f"{e} in {self.path}; ignored")
                return default
        return value

    def set(self, key: str, value: Any) -> None:
        self.values[key] = parse_setting(key, value)
        self.save()

    def unset(self, key: str) -> None:
        self.values.pop(key, None)
        self.save()

    def save(self) -> None:
        if self.damaged and self.path.is_file():
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, aside)
            warn(f"the damaged settings file was kept as {aside}")
            self.damaged = None
        atomic_write_text(self.path, json.dumps(self.values, indent=2, sort_keys=True) + "\n")

    def source(self, key: str) -> str:
        """Where a setting's value comes from: ``env``, ``file`` or ``default``."""
        if key == "default_model" and os.environ.get("LMASSIST_MODEL"):
            return "env LMASSIST_MODEL"
        return "file" if key in self.values else "default"

    @property
    def default_model(self) -> str:
        return os.environ.get("LMASSIST_MODEL") or self.get("default_model") or DEFAULT_MODEL

    def backend_settings(self, backend: str) -> dict[str, Any]:
        """Settings stored as ``BACKEND.KEY``, handed to that backend's ``load`` (invalid ones dropped)."""
        prefix = backend + "."
        out: dict[str, Any] = {}
        for key in self.values:
            if key.startswith(prefix):
                value = self.get(key)
                if value is not None and not (value == "auto" and key in SETTINGS and SETTINGS[key].kind == "auto-int"):
                    out[key[len(prefix):]] = value
        return out


# -- progress --------------------------------------------------------------------------------------

PROGRESS_INTERVAL_ENV = "LMASSIST_PROGRESS_INTERVAL"
DEFAULT_PROGRESS_INTERVAL = 5.0


def progress_interval() -> float:
    """Seconds between plain progress lines when stderr is not a terminal (``LMASSIST_PROGRESS_INTERVAL``;
    0 turns them off). Logs and CI then show that long work is alive, without a line per step."""
    raw = os.environ.get(PROGRESS_INTERVAL_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_PROGRESS_INTERVAL
    except ValueError:
        return DEFAULT_PROGRESS_INTERVAL
    return value if value >= 0 and value == value else DEFAULT_PROGRESS_INTERVAL
