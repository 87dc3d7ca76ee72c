"""The training recipe's pieces and the one-process side of devices (multi-process: test_inhouse_ddp)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lmassist.inhouse import devices  # noqa: E402
from lmassist.inhouse.recipe import (  # noqa: E402
    TrainConfig,
    learning_rate,
    make_optimizer,
    optimizer_tensors,
    restore_optimizer,
)
from lmassist.textinput import read_text_file  # noqa: E402


def test_learning_rate_warms_up_then_decays_to_its_floor():
    peak, warmup, floor = 1e-3, 10, 0.1
    assert learning_rate(0, 0.0, peak, warmup, floor) == pytest.approx(peak / warmup)
    assert learning_rate(9, 0.0, peak, warmup, floor) == pytest.approx(peak)
    assert learning_rate(500, 0.5, peak, warmup, floor) == pytest.approx(peak * (floor + (1 - floor) / 2))
    assert learning_rate(1000, 1.0, peak, warmup, floor) == pytest.approx(peak * floor)
    assert learning_rate(2000, 3.0, peak, warmup, floor) == pytest.approx(peak * floor)  # past the end


def test_optimizer_state_survives_safetensors_names():
    model = torch.nn.Linear(4, 3)
    opt = make_optimizer(model, 1e-2, 0.1, torch.device("cpu"))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # matrices decay, biases do not
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    tensors = optimizer_tensors(opt)
    fresh = make_optimizer(model, 1e-2, 0.1, torch.device("cpu"))
    restore_optimizer(fresh, tensors)
    for key, value in fresh.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt.state_dict()["state"][0][key]))


def test_one_process_needs_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist, device = devices.start("cpu", None)
    assert (dist.world, dist.main, device.type) == (1, True, "cpu")
    model = torch.nn.Linear(2, 2)
    assert dist.wrap(model, device) is model
    done, stop = dist.agree(0.25, False)
    assert done == pytest.approx(0.25) and stop is False
    dist.close()  # a no-op
    peak = devices.peak_memory_mb(device)
    assert peak is None or peak > 0


def test_auto_size_is_tiny_only_for_a_short_cpu_budget():
    cpu = torch.device("cpu")
    assert TrainConfig(minutes=2).resolve_size(cpu) == "tiny"
    assert TrainConfig(minutes=60).resolve_size(cpu) == "small"
    assert TrainConfig(steps=10).resolve_size(cpu) == "small"
    assert TrainConfig(size="medium", minutes=1).resolve_size(cpu) == "medium"


def test_a_corpus_file_may_be_larger_than_a_task_input(tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_text("a" * 64)
    monkeypatch.setattr("lmassist.textinput.MAX_INPUT_BYTES", 16)
    assert read_text_file(big, bounded=False) == "a" * 64
    with pytest.raises(Exception, match="limit"):
        read_text_file(big)
