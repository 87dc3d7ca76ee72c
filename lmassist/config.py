"""Where lmassist keeps its files, and the user's settings.

Everything lives under the platform's usual folders (platformdirs). ``LMASSIST_HOME`` moves all of
it at once (tests, portable installs); ``LMASSIST_CONFIG_DIR``, ``LMASSIST_DATA_DIR``,
``LMASSIST_CACHE_DIR`` and ``LMASSIST_MODELS_DIR`` move one folder each and win over the home.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmassist.generation import LMAssistError

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


class Settings:
    """The user's settings: a small JSON file of dotted keys (``default_model``, ``hf.device``...)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths().settings_file
        self.values: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.values = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise LMAssistError(f"cannot read settings file {self.path}: {e}") from None
            if not isinstance(self.values, dict):
                raise LMAssistError(f"settings file {self.path} must hold a JSON object")

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.save()

    def unset(self, key: str) -> None:
        self.values.pop(key, None)
        self.save()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.values, indent=2, sort_keys=True) + "\n")

    @property
    def default_model(self) -> str:
        return os.environ.get("LMASSIST_MODEL") or self.get("default_model") or DEFAULT_MODEL

    def backend_settings(self, backend: str) -> dict[str, Any]:
        """Settings stored as ``BACKEND.KEY``, handed to that backend's ``load``."""
        prefix = backend + "."
        return {k[len(prefix):]: v for k, v in self.values.items() if k.startswith(prefix)}
