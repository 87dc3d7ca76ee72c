"""llama.cpp on the machines people have: crash-prone CPUs, native crashes, busy machines."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import assert_one_line_error, run_cli

from lmassist.backends import llamacpp_check as lc
from lmassist.generation import CancelToken, GenerationOptions, Message
from lmassist.plugins import PluginManager
from lmassist.system import free_cores

# What llama-cpp-python 0.3.36 prints on a Xeon with AMX (from the trial in issue 13).
AMX_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
    "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
    "REPACK = 1 | "
)
EPYC_INFO = AMX_INFO.replace("AMX_INT8 = 1 | ", "")


def _registry():
    from lmassist.registry import Registry

    return Registry(PluginManager(load_entry_points=False))


def test_system_info_is_parsed_into_features():
    features = lc.cpu_features(AMX_INFO)
    assert features["AMX_INT8"] == "1" and features["AVX2"] == "1" and features["OPENMP"] == "1"
    assert lc.crash_prone(AMX_INFO) == ["AMX_INT8"]
    assert lc.crash_prone(EPYC_INFO) == []
    assert lc.crash_prone(AMX_INFO.replace("AMX_INT8 = 1", "AMX_INT8 = 0")) == []


def test_extra_buffers_auto_turns_them_off_only_where_known_to_crash():
    assert lc.use_extra_buffers("auto", AMX_INFO) is False
    assert lc.use_extra_buffers("auto", EPYC_INFO) is True
    assert lc.use_extra_buffers("on", AMX_INFO) is True
    assert lc.use_extra_buffers("off", EPYC_INFO) is False
    with pytest.raises(lc.ModelLoadError, match="auto, on, off"):
        lc.use_extra_buffers("maybe", EPYC_INFO)


def test_an_amx_cpu_loads_without_extra_buffers_and_generates(default_gguf, monkeypatch):
    """Detection fed the AMX report: the model loads with use_extra_bufts off, for real, and answers."""
    monkeypatch.setattr(lc, "system_info", lambda: AMX_INFO)
    model = _registry().load("llamacpp:smollm2-135m-instruct", threads=1)
    try:
        assert model.info.details["extra_buffers"] is False
        assert model.llama.model_params.use_extra_bufts is False
        reply = model.chat([Message("user", "Say hello.")], GenerationOptions(temperature=0, max_new_tokens=8))
        assert reply.result().strip()
    finally:
        model.close()
    model = _registry().load("llamacpp:smollm2-135m-instruct", threads=1, extra_buffers="on")
    try:
        assert model.info.details["extra_buffers"] is True and model.llama.model_params.use_extra_bufts is True
    finally:
        model.close()


def test_a_native_crash_in_the_check_is_one_line_not_a_dead_process(default_gguf, lmassist_home):
    (lmassist_home / "cache" / "llamacpp-checks.json").unlink(missing_ok=True)
    proc = run_cli("ask", "--no-log", "hi", env={"LMASSIST_FAULT_INJECT": "segv"})
    line = assert_one_line_error(proc, "crashed with SIGSEGV", "llamacpp.extra_buffers", "GGML_NATIVE=OFF",
                                 "lmassist doctor")
    assert proc.returncode == 1, line


def test_an_unknown_crash_with_extra_buffers_falls_back_without_them(default_gguf, lmassist_home):
    (lmassist_home / "cache" / "llamacpp-checks.json").unlink(missing_ok=True)
    proc = run_cli("ask", "--no-log", "-O", "max_new_tokens", "4", "-O", "temperature", "0", "Say hi",
                   env={"LMASSIST_FAULT_INJECT": "segv-with-extra-buffers"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    cached = json.loads((lmassist_home / "cache" / "llamacpp-checks.json").read_text())
    assert [r["extra_buffers"] for r in cached.values()] == [False]


def test_the_check_runs_once_per_model_build_and_cpu(default_gguf, lmassist_home, monkeypatch):
    (lmassist_home / "cache" / "llamacpp-checks.json").unlink(missing_ok=True)
    calls = []
    real_probe = lc.probe
    monkeypatch.setattr(lc, "probe", lambda *a, **k: calls.append(a) or real_probe(*a, **k))
    assert lc.checked_extra_buffers(str(default_gguf), "auto") is True
    assert lc.checked_extra_buffers(str(default_gguf), "auto") is True
    assert len(calls) == 1
    lc.cache_file().write_text("{not json")  # a damaged cache costs one more check, nothing else
    assert lc.checked_extra_buffers(str(default_gguf), "auto") is True
    assert len(calls) == 2


def test_doctor_reports_versions_cpu_backends_folders_and_a_passing_check(default_gguf):
    proc = run_cli("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["packages"]["llama-cpp-python"]
    assert report["cpu"]["physical_cores"] >= 1
    assert report["llamacpp"]["check"]["ok"] is True
    assert {b["name"] for b in report["backends"]} >= {"llamacpp", "hf", "inhouse"}
    assert set(report["folders"]) == {"config", "data", "cache", "models"}
    text = run_cli("doctor", "--no-check")
    assert text.returncode == 0 and "llama.cpp: CPU :" in text.stdout and "models:" in text.stdout


def test_doctor_reports_a_crashing_build_in_one_line(default_gguf):
    proc = run_cli("doctor", env={"LMASSIST_FAULT_INJECT": "segv"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "crashed with SIGSEGV" in line]
    assert len(lines) == 1 and "GGML_NATIVE=OFF" in lines[0] and "lmassist doctor" in lines[0]


def test_threads_follow_the_cores_other_processes_leave():
    assert free_cores(2, 0.0) == 2
    assert free_cores(2, 0.3) == 2
    assert free_cores(2, 0.67) == 1  # one busy process sharing two cores with our two threads
    assert free_cores(2, 2.0) == 1
    assert free_cores(8, 3.0) == 5


def test_a_busy_machine_makes_auto_threads_back_off_while_generating(default_gguf, busy_cores):
    """With every core taken by a busy process, `auto` threads drop to one between decode steps."""
    import llama_cpp

    model = _registry().load("llamacpp:smollm2-135m-instruct", threads="auto")
    try:
        gen = model.chat([Message("user", "Count from one to thirty in words.")],
                         GenerationOptions(temperature=0, max_new_tokens=48))
        gen.result()
        assert model.info.details["threads"] == "auto"
        assert llama_cpp.llama_n_threads(model.llama._ctx.ctx) == 1
    finally:
        model.close()


def test_a_fixed_thread_count_is_kept(default_gguf):
    model = _registry().load("llamacpp:smollm2-135m-instruct", threads=2)
    try:
        import llama_cpp

        model.chat([Message("user", "Hi")], GenerationOptions(temperature=0, max_new_tokens=4)).result()
        assert llama_cpp.llama_n_threads(model.llama._ctx.ctx) == 2 and model.info.details["threads"] == 2
    finally:
        model.close()


def test_cancel_takes_effect_while_a_long_prompt_is_read(smollm):
    """Ctrl+C during prompt evaluation stops it between batches, not after the whole prompt."""
    smollm.llama.reset()
    words = " ".join(f"item{i}" for i in range(600))
    token = CancelToken()
    gen = smollm.chat([Message("user", f"Summarize: {words}")], GenerationOptions(temperature=0, max_new_tokens=8), token)
    threading.Timer(0.3, token.cancel).start()
    text = gen.result()
    assert gen.stats.stop_reason == "cancelled" and text == ""
    assert 0 < gen.stats.prompt_tokens and smollm.llama.n_tokens < gen.stats.prompt_tokens - 128


def test_bench_ask_runs_every_thread_and_wait_policy_beside_busy_processes(default_gguf):
    proc = run_cli("bench", "ask", "--rounds", "1", "--tokens", "8", "--background", "1", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["background"] == 1 and figures["targets"]["ratio"] == ">= 0.9"
    rates = {k: v for k, v in figures.items() if k.endswith(": tokens/s")}
    assert "ours (threads auto): tokens/s" in rates and "raw 1 thread: tokens/s" in rates
    if figures["cores"] > 1:
        assert any("passive" in k for k in rates) and any("spin" in k for k in rates)
    assert all(v > 0 for v in rates.values())
    assert figures["ratio"] > 0 and figures["best raw"] in {k.removesuffix(": tokens/s") for k in rates}


def test_bench_buffers_measures_the_fallback_beside_the_default(default_gguf):
    proc = run_cli("bench", "buffers", "--rounds", "1", "--tokens", "4", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    on = figures[f"{default_gguf.name} | native, extra buffers on"]
    off = figures[f"{default_gguf.name} | native, extra buffers off"]
    assert "(1.00x)" in on and "prompt" in off and "decode" in off


def test_a_context_beyond_the_trained_one_is_capped_before_it_is_allocated(default_gguf):
    model = _registry().load("llamacpp:smollm2-135m-instruct", threads=1, n_ctx=500_000)
    try:
        assert model.context_length == 8192  # SmolLM2's trained context, not 500k tokens of KV cache
    finally:
        model.close()
