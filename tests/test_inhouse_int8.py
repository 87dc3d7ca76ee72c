"""int8 weight-only quantization of in-house models, our own (no torch.ao), and what optimize reports."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from lmassist.errors import ModelLoadError  # noqa: E402
from lmassist.inhouse import checkpoint as ckpt  # noqa: E402
from lmassist.inhouse.int8 import SCALE, dequantize_int8, quantize_int8  # noqa: E402
from lmassist.inhouse.optimize import OptimizeReport, optimize_checkpoint  # noqa: E402
from lmassist.inhouse.train import TrainConfig, train  # noqa: E402

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog.\n" * 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Transformer and its int8 copy, made once for the module."""
    folder = tmp_path_factory.mktemp("int8")
    (folder / "c.txt").write_text(TEXT)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = TrainConfig(size="tiny", steps=30, batch_size=8, eval_interval=1000, eval_tokens=64, lr=1e-2,
                      model_overrides=dict(n_embd=32, n_layer=2, n_head=2, context_length=32))
    train([folder / "c.txt"], folder / "m", cfg, progress=False, log=lambda _: None)
    report = optimize_checkpoint(folder / "m", folder / "q", quantize="int8", speed_tokens=20, rounds=2)
    torch.set_num_threads(before)
    return folder, report


def test_per_output_channel_scales_bound_the_error_of_every_row():
    w = torch.randn(6, 40) * torch.tensor([1e-3, 0.1, 1.0, 10.0, 0.0, 3.0])[:, None]  # rows of very different size
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and scale.shape == (6,) and scale.dtype == torch.float32
    assert int(q.abs().max()) <= 127
    err = (dequantize_int8(q, scale) - w).abs()
    # each row's error is at most half of its own step: a per-tensor scale would wipe out the small rows
    assert torch.all(err.amax(dim=1) <= scale / 2 + 1e-9)
    assert float(err[0].max() / w[0].abs().max()) < 0.01  # the 1e-3 row keeps its values, not rounded to 0
    assert torch.all(dequantize_int8(q, scale)[4] == 0)  # an all-zero row stays zero (no division by 0)


def test_the_file_stores_int8_matrices_with_scales_in_safetensors(trained):
    folder, _ = trained
    from safetensors import safe_open

    with safe_open(str(folder / "q" / ckpt.WEIGHTS), framework="pt") as f:
        names = list(f.keys())
        fc = f.get_tensor("blocks.0.mlp.fc.weight")
        fc_scale = f.get_tensor(SCALE + "blocks.0.mlp.fc.weight")
        bias_like = [n for n in names if n.endswith("ln_1.weight")]
        assert fc.dtype == torch.int8 and fc_scale.shape == (fc.shape[0],)
        assert all(f.get_tensor(n).dtype == torch.float32 for n in bias_like)  # vectors stay fp32
    assert json.loads((folder / "q" / ckpt.CONFIG).read_text())["quantization"] == "int8"
    assert (folder / "q" / ckpt.WEIGHTS).stat().st_size < 0.4 * (folder / "m" / ckpt.WEIGHTS).stat().st_size


def test_an_int8_model_loads_as_the_same_network_in_fp32(trained):
    folder, _ = trained
    original = ckpt.load_checkpoint(folder / "m").model
    copy = ckpt.load_checkpoint(folder / "q").model
    assert [type(m) for m in copy.modules()] == [type(m) for m in original.modules()]
    assert all(p.dtype == torch.float32 for p in copy.parameters())
    for (name, a), (_, b) in zip(original.state_dict().items(), copy.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=float(a.abs().max()) / 127), name
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.allclose(original(ids)[0], copy(ids)[0], atol=0.05)


def test_loading_and_optimizing_never_touch_torch_ao_quantization(trained, tmp_path):
    """Run in a child with torch's dynamic quantization booby-trapped and every DeprecationWarning an error."""
    folder, _ = trained
    code = f"""
import warnings
warnings.simplefilter("error", DeprecationWarning)
warnings.simplefilter("error", FutureWarning)
import torch, torch.ao.quantization as aoq
def trap(*a, **k):
    raise AssertionError("torch.ao.quantization was used")
aoq.quantize_dynamic = aoq.quantize_dynamic_jit = trap
from lmassist.inhouse.checkpoint import load_checkpoint
from lmassist.inhouse.model import generate
from lmassist.inhouse.optimize import optimize_checkpoint
optimize_checkpoint({str(folder / "m")!r}, {str(tmp_path / "again")!r}, quantize="int8", prune=0.2,
                    speed_tokens=5, rounds=1)
model = load_checkpoint({str(tmp_path / "again")!r}).model
print(len(list(generate(model, [1], 8, temperature=0))))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "8"


def test_the_summary_says_what_the_copy_is_from_the_figures(trained):
    _, report = trained
    text = "\n".join(report.lines())
    assert re.search(r"tokens/s: median of 2 rounds decoding both in lockstep, one thread, ratio per round [\d.]+–[\d.]+", text)
    verdict = report.lines()[-1]
    assert "int8 weights on disk, decoded to fp32 when loaded" in verdict
    assert f"{report.size_ratio:.2f}× the size on disk" in verdict
    assert "same memory" in verdict
    assert "faster" not in text  # nothing promises what was not measured
    assert report.size_ratio < 0.4 and report.perplexity_ratio is not None and report.perplexity_ratio < 1.2


def test_the_verdict_follows_the_measured_speed():
    def report(before_tps, after_tps, ratios=()):
        return OptimizeReport(ckpt_measure(1000, before_tps), ckpt_measure(260, after_tps), quantize="int8",
                              speed_ratios=list(ratios))

    assert "the same speed within this machine's noise (×1.02)" in report(100, 102).verdict()
    assert "×0.80 the speed" in report(100, 80).verdict()
    assert "×0.80 the speed" in report(100, 80, [0.78, 0.80, 0.85]).verdict()  # every round slower
    assert "×1.50 the speed" in report(100, 150, [1.4, 1.5, 1.6]).verdict()
    noisy = report(100, 90, [0.85, 0.9, 1.1])  # the rounds disagree about which is faster
    assert "the same speed within this machine's noise (×0.90)" in noisy.verdict()
    assert "ratio per round 0.85–1.10" in "\n".join(noisy.lines())


def ckpt_measure(size, tps):
    from lmassist.inhouse.optimize import Measure

    return Measure(size, tps, 4.0)


@pytest.mark.parametrize("damage", ["drop-scale", "scale-of-wrong-length", "orphan-scale"])
def test_a_damaged_int8_file_is_a_one_line_load_error(trained, tmp_path, damage):
    import shutil

    from safetensors.torch import load_file, save_file

    folder, _ = trained
    broken = tmp_path / "broken"
    shutil.copytree(folder / "q", broken)
    tensors = load_file(str(broken / ckpt.WEIGHTS))
    name = "blocks.0.mlp.fc.weight"
    if damage == "drop-scale":
        del tensors[SCALE + name]
    elif damage == "scale-of-wrong-length":
        tensors[SCALE + name] = tensors[SCALE + name][:-1].clone()
    else:
        del tensors[name]
    save_file(tensors, str(broken / ckpt.WEIGHTS))
    with pytest.raises(ModelLoadError) as info:
        ckpt.load_checkpoint(broken)
    assert "\n" not in str(info.value) and str(broken) in str(info.value)


def test_an_int8_copy_goes_to_the_device_asked_for(trained):
    """fp32 once loaded, so an int8 copy runs on a GPU too (torch's int8 kernels were CPU-only).

    The "meta" device stands in for a GPU here: the weights must move wherever they are sent.
    """
    folder, _ = trained
    loaded = ckpt.load_checkpoint(folder / "q", device="meta")
    assert {p.device.type for p in loaded.model.parameters()} == {"meta"}


def test_an_optimized_copy_answers_through_the_real_command_line(tmp_path):
    """The README's path: optimize the shipped model, then use the copy by name with `ask`."""
    from conftest import run_cli

    text = tmp_path / "held-out.txt"
    text.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n" * 4)
    proc = run_cli("optimize", "shakespeare", "--quantize", "int8", "--name", "shakespeare-small",
                   "--rounds", "1", "--file", str(text), timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "the copy: int8 weights on disk, decoded to fp32 when loaded: 0.26× the size on disk" in proc.stdout
    assert "(use it as inhouse:shakespeare-small)" in proc.stdout
    proc = run_cli("ask", "--no-log", "-m", "inhouse:shakespeare-small", "-O", "max_new_tokens", "20",
                   "-O", "temperature", "0", "ROMEO:", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) >= 10
