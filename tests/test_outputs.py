"""``-o FILE`` never destroys what is at the path (issue 14 item 4): real files, links, devices, FIFOs.

The CLI tests pass a model that does not exist: the output path must be refused *before* any model
work, so the error names the output, not the model. Device nodes are made with ``mknod`` inside the
test's own folder (the suite runs as root), never the machine's ``/dev/full``, so a regression turns a
throwaway node into a file instead of breaking the machine.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli

from lmassist.generation import LMAssistError
from lmassist.outputs import check_output, write_output

NO_MODEL = ["-m", "llamacpp:no-such-model-here"]
TEXT = "The council met on Monday. It approved a new library for the town.\n\nWork starts in May.\n"


def _no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or "lmassist-probe" in p.name]


def _char_device(path: Path, minor: int = 7) -> Path:
    """A character device like /dev/full (1, 7) or /dev/null (1, 3), in the test's folder."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("mknod is not allowed here")
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "in.txt"
    src.write_text(TEXT)
    return src


# -- the module, with real files ---------------------------------------------------------------------


def test_regular_file_is_replaced_atomically_and_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("old")
    os.chmod(out, 0o644)
    before = os.stat(out).st_ino
    write_output(out, "new text\n")
    assert out.read_text() == "new text\n"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644  # was 0o600 through mkstemp
    assert os.stat(out).st_ino != before  # replaced through a temporary file, not truncated in place
    _no_temp_files(tmp_path)
    os.chmod(out, 0o640)
    write_output(out, "again\n")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640


def test_new_file_gets_the_umask_mode_like_the_shell(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_output(tmp_path / "fresh.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "fresh.txt").st_mode) == 0o644


def test_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "real.md"
    target.write_text("old")
    os.chmod(target, 0o644)
    link = tmp_path / "link.md"
    link.symlink_to(target)
    write_output(link, "through the link\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "through the link\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    _no_temp_files(tmp_path)


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "later.txt")
    write_output(link, "made\n")
    assert link.is_symlink() and (tmp_path / "later.txt").read_text() == "made\n"


def test_hard_linked_file_is_rewritten_for_every_name(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("old")
    b = tmp_path / "b.txt"
    os.link(a, b)
    write_output(a, "shared\n")
    assert b.read_text() == "shared\n" and os.stat(a).st_ino == os.stat(b).st_ino


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_the_machines_devices_are_refused_and_untouched(device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"no {device} here")
    with pytest.raises(LMAssistError, match="character device"):
        check_output(device)
    with pytest.raises(LMAssistError, match="character device"):
        write_output(device, "x")
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(LMAssistError, match="FIFO"):
        write_output(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_folder_and_file_as_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LMAssistError, match="is a folder"):
        check_output(tmp_path)
    plain = tmp_path / "plain.txt"
    plain.write_text("keep")
    with pytest.raises(LMAssistError, match="plain.txt is not a folder"):
        check_output(plain / "out.txt")
    with pytest.raises(LMAssistError, match="not a folder"):
        write_output(plain / "sub" / "out.txt", "x")
    assert plain.read_text() == "keep"


def test_missing_folders_are_created_only_when_writing(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out.txt"
    check_output(out)
    assert not (tmp_path / "a").exists()  # checking creates nothing
    write_output(out, "deep\n")
    assert out.read_text() == "deep\n"
    _no_temp_files(out.parent)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores mode bits: the chattr +i folder tests cover root")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(LMAssistError, match="cannot create files"):
            check_output(folder / "out.txt")
    finally:
        folder.chmod(0o755)


@pytest.fixture
def locked_folder(tmp_path: Path):
    """A folder nobody, root included, may add files to (``chattr +i``): a read-only folder for root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "kept.txt").write_text("old")
    os.chmod(folder / "kept.txt", 0o644)
    try:
        subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chattr +i is not available here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def test_a_folder_that_takes_no_new_files_is_refused_before_work(locked_folder: Path, source: Path) -> None:
    with pytest.raises(LMAssistError, match="cannot create files in"):
        check_output(locked_folder / "new.txt")
    proc = run_cli("summarize", str(source), "-o", str(locked_folder / "new.txt"), *NO_MODEL)
    assert_one_line_error(proc, "cannot write", "cannot create files in")
    assert "no-such-model" not in proc.stderr


def test_a_writable_file_in_such_a_folder_is_rewritten_in_place(locked_folder: Path) -> None:
    kept = locked_folder / "kept.txt"
    write_output(kept, "new\n")
    assert kept.read_text() == "new\n" and stat.S_IMODE(os.stat(kept).st_mode) == 0o644


# -- the commands, in real subprocesses ---------------------------------------------------------------


def test_task_output_to_a_device_is_refused_before_the_model_loads(tmp_path: Path, source: Path) -> None:
    dev = _char_device(tmp_path / "full")
    proc = run_cli("summarize", str(source), "-o", str(dev), *NO_MODEL)
    assert_one_line_error(proc, "cannot write", "character device", "> ")
    assert "no-such-model" not in proc.stderr  # refused before the model was looked up
    assert stat.S_ISCHR(os.stat(dev).st_mode)  # still a device, not a regular file


def test_task_output_to_a_fifo_or_folder_or_under_a_file(tmp_path: Path, source: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = run_cli("summarize", str(source), "-o", str(fifo), *NO_MODEL, timeout=60)
    assert_one_line_error(proc, "FIFO")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    proc = run_cli("summarize", str(source), "-o", str(tmp_path), *NO_MODEL)
    assert_one_line_error(proc, "is a folder")
    proc = run_cli("summarize", str(source), "-o", str(source / "out.txt"), *NO_MODEL)
    assert_one_line_error(proc, "in.txt is not a folder")
    assert source.read_text() == TEXT


def test_task_output_keeps_mode_and_writes_through_a_link(tmp_path: Path, source: Path, default_gguf: Path) -> None:
    target = tmp_path / "summary.txt"
    target.write_text("old summary")
    os.chmod(target, 0o644)
    link = tmp_path / "latest.txt"
    link.symlink_to(target)
    proc = run_cli("summarize", str(source), "-o", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and "library" in target.read_text()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    _no_temp_files(tmp_path)


def test_history_export_refuses_a_device_and_writes_through_a_link(tmp_path: Path) -> None:
    from lmassist.store import Store

    with Store() as s:
        cid = s.new_conversation(title="Bread").id
        s.add_message(cid, "user", "How do I bake bread?")
    dev = _char_device(tmp_path / "null", minor=3)
    proc = run_cli("history", "export", "no-such-id", "-o", str(dev))
    assert_one_line_error(proc, "character device")  # checked before the conversation is looked up
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    target = tmp_path / "chat.md"
    target.write_text("old")
    os.chmod(target, 0o644)
    link = tmp_path / "chat-link.md"
    link.symlink_to(target)
    proc = run_cli("history", "export", cid, "-o", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and target.read_text().startswith("# Bread")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    proc = run_cli("history", "export", cid, "-o", str(target / "x.md"))
    assert_one_line_error(proc, "chat.md is not a folder")


def test_output_dash_means_stdout(source: Path, default_gguf: Path) -> None:
    proc = run_cli("summarize", str(source), "-o", "-")
    assert proc.returncode == 0, proc.stderr
    assert "library" in proc.stdout and not Path("-").exists()
