"""Deprecated APIs fail the tests the day we call them, not the day upstream removes them.

pyproject.toml's pytest settings turn a DeprecationWarning attributed to our own modules into an
error in every test. Warnings that a library raises on its own behalf (torch.ao.quantization warns
from its own file) slip past a module filter, so the paths that call such libraries are also run
here with every DeprecationWarning an error, whoever raises it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest


def test_a_deprecation_warning_from_our_code_fails_the_test():
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old API", DeprecationWarning, "lmassist/inhouse/optimize.py", 1,
                               module="lmassist.inhouse.optimize")
    with pytest.raises(PendingDeprecationWarning):
        warnings.warn_explicit("old API", PendingDeprecationWarning, "lmassist/cli.py", 1, module="lmassist.cli")


def _run_strict(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where any DeprecationWarning, from anyone, is an error."""
    strict = "import warnings\n" + "".join(
        f"warnings.simplefilter('error', {c})\n"
        for c in ("DeprecationWarning", "PendingDeprecationWarning", "FutureWarning")
    )
    return subprocess.run([sys.executable, "-c", strict + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def test_every_module_imports_without_a_deprecation_warning():
    proc = _run_strict("""
        import importlib, pkgutil, lmassist
        for m in pkgutil.walk_packages(lmassist.__path__, "lmassist."):
            if not m.name.endswith("__main__"):  # __main__ runs the command line
                importlib.import_module(m.name)
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_train_optimize_load_and_generate_raise_no_deprecation_warning(tmp_path):
    pytest.importorskip("torch")
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat. the dog sat on the log.\n" * 20)
    proc = _run_strict(f"""
        import torch
        import torch.ao.quantization as aoq
        torch.set_num_threads(1)
        def removed(*args, **kwargs):  # being removed (pytorch/pytorch#153892); it hid its own warning
            raise AssertionError("torch.ao.quantization.quantize_dynamic was called")
        aoq.quantize_dynamic = removed
        from lmassist.inhouse.checkpoint import load_checkpoint
        from lmassist.inhouse.evaluate import evaluate_ids
        from lmassist.inhouse.model import generate
        from lmassist.inhouse.optimize import optimize_checkpoint
        from lmassist.inhouse.train import TrainConfig, train
        for arch in ("transformer", "lstm", "rnn"):
            cfg = TrainConfig(arch=arch, size="tiny", steps=3, batch_size=4, eval_interval=2, eval_tokens=32,
                              model_overrides=dict(n_embd=16, n_layer=1, context_length=16))
            train([{str(corpus)!r}], {str(tmp_path)!r} + "/" + arch, cfg, progress=False, log=lambda _: None)
            optimize_checkpoint({str(tmp_path)!r} + "/" + arch, {str(tmp_path)!r} + "/" + arch + "-q",
                                quantize="int8", prune=0.2, speed_tokens=5, rounds=1)
            model = load_checkpoint({str(tmp_path)!r} + "/" + arch + "-q").model
            assert len(list(generate(model, [1, 2], 5, temperature=0.8, top_k=5, top_p=0.9))) == 5
            evaluate_ids(model, [1, 2, 3, 4, 5, 6])
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
