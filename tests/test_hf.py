"""The transformers backend on a tiny GPT-2 built here (random weights, the real GPT-2 code path).

Nothing is downloaded: the model and its byte-level BPE tokenizer are made and saved to a temporary
folder once per session, then loaded through the registry as ``hf:/that/folder``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import run_cli

from lmassist.generation import ContextLengthError, GenerationOptions, LMAssistError, Message

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

TEXT = (
    "Once upon a time there was a tiny model. It learned to talk about cats, dogs and the sea. "
    "The sea was wide and blue; the cats were small and grey. Café, naïve, déjà vu: words with accents. "
)
GREEDY = GenerationOptions(temperature=0.0, repetition_penalty=1.0, max_new_tokens=24)


def build_tiny_gpt2(folder: Path, n_positions: int = 256) -> Path:
    """A 2-layer GPT-2 with random weights and a BPE tokenizer trained on a few sentences."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([TEXT * 10], vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>",
                            eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tok), n_positions=n_positions, n_embd=64, n_layer=2, n_head=2,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny(tiny_gpt2: Path):
    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    model = Registry(PluginManager(load_entry_points=False)).load("hf:" + str(tiny_gpt2))
    yield model
    model.close()


def _raw_new_ids(model, ids: list[int], n: int) -> list[int]:
    config = model.generation_config(GREEDY, n)
    with torch.inference_mode():
        out = model.hf_model.generate(**model.input_tensors(ids), generation_config=config)
    return out[0, len(ids):].tolist()


def test_backend_import_and_listing_stay_light() -> None:
    """`lmassist --help` and `models list` must not import torch or transformers."""
    code = (
        "import sys; from lmassist.backends.hf import HFBackend; b = HFBackend(); "
        "assert b.unavailable_reason() is None, b.unavailable_reason(); names = [s.full_name for s in b.models()]; "
        "assert 'hf:gpt2' in names and 'hf:smollm2-135m-instruct' in names, names; "
        "heavy = [m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_info(tiny) -> None:
    assert tiny.info.backend == "hf"
    assert tiny.info.chat_template is False
    assert tiny.info.device == "cpu"
    assert tiny.info.context_length == 256
    assert tiny.info.details["architecture"] == "GPT2LMHeadModel"
    assert tiny.count_tokens("the sea") >= 1


def test_stream_is_one_piece_per_token_and_matches_raw_generate(tiny) -> None:
    prompt = "Once upon a time"
    ids = tiny._encode(prompt, special=True)
    gen = tiny.complete(prompt, GREEDY)
    pieces = list(gen)
    raw = _raw_new_ids(tiny, ids, GREEDY.max_new_tokens)
    if raw and raw[-1] in tiny.eos_token_ids:
        raw = raw[:-1]
    assert gen.stats.prompt_tokens == len(ids)
    assert gen.stats.generated_tokens == len(raw) == len(pieces)
    assert "".join(pieces) == tiny._tokenizer.decode(raw) == gen.text
    assert gen.stats.stop_reason == ("length" if len(raw) == GREEDY.max_new_tokens else "eos")


def test_max_new_tokens_ends_with_length(tiny) -> None:
    gen = tiny.complete("the cats", GREEDY.replace(max_new_tokens=5))
    gen.result()
    assert gen.stats.generated_tokens == 5
    assert gen.stats.stop_reason == "length"


def test_stop_string_cuts_the_reply(tiny) -> None:
    full = tiny.complete("The sea was", GREEDY.replace(max_new_tokens=30)).result()
    assert len(full) > 12
    stop = full[8:11]
    expected = full[: full.find(stop)]
    gen = tiny.complete("The sea was", GREEDY.replace(max_new_tokens=30, stop=(stop,)))
    assert gen.result() == expected
    assert gen.stats.stop_reason == "stop"


def test_base_model_chat_uses_a_transcript_that_ends_at_the_turn(tiny) -> None:
    messages = [Message("system", "Be brief."), Message("user", "Hi there")]
    assert tiny._render(messages) == "System: Be brief.\nUser: Hi there\nAssistant:"
    gen = tiny.chat(messages, GREEDY)
    assert "\nUser:" in gen._request.options.stop
    text = gen.result()
    assert "\nUser:" not in text
    assert gen.stats.prompt_tokens == len(tiny._encode(tiny._render(messages), special=True))


def test_seed_makes_sampling_repeatable(tiny) -> None:
    opts = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=16, seed=123)
    a = tiny.complete("The cats", opts).result()
    b = tiny.complete("The cats", opts).result()
    c = tiny.complete("The cats", opts.replace(seed=124)).result()
    assert a == b
    assert a != c


def _generate_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lmassist-hf-generate" and t.is_alive()]


def test_cancel_from_another_thread_stops_within_a_token_or_two(tiny) -> None:
    gen = tiny.complete("Once", GenerationOptions(temperature=1.0, max_new_tokens=200, seed=1))
    seen_at_cancel = None
    count = 0
    for _ in gen:
        count += 1
        if count == 3:
            canceller = threading.Thread(target=gen.cancel)
            canceller.start()
            canceller.join()
            seen_at_cancel = gen.stats.generated_tokens
    assert seen_at_cancel is not None
    assert gen.stats.generated_tokens - seen_at_cancel <= 2
    assert gen.stats.stop_reason == "cancelled"
    assert gen.interrupted
    assert not _generate_threads()


def test_consumer_leaving_early_stops_the_generate_thread(tiny) -> None:
    gen = tiny.complete("Once", GenerationOptions(temperature=1.0, max_new_tokens=200, seed=1))
    it = iter(gen)
    next(it)
    it.close()
    assert not _generate_threads()
    assert gen.stats.stop_reason == "cancelled"
    # and the model is free for the next reply
    assert tiny.complete("Once", GREEDY.replace(max_new_tokens=3)).result() is not None


def test_score_is_the_log_softmax_of_one_forward_pass(tiny) -> None:
    prompt, continuations = "The sea was", [" wide", " grey and small", ""]
    scores = tiny.score(prompt, continuations)
    assert scores[2] == 0.0
    for cont, got in zip(continuations[:2], scores[:2], strict=True):
        p = tiny._encode(prompt, special=True)
        ids = tiny._encode(prompt + cont, special=True)
        with torch.inference_mode():
            logp = tiny.hf_model(torch.tensor([ids])).logits[0].log_softmax(-1)
        want = sum(float(logp[i - 1, ids[i]]) for i in range(len(p), len(ids)))
        assert got == pytest.approx(want, abs=1e-4)
        assert got < 0
    # an empty prompt is conditioned on the beginning-of-text token rather than failing
    assert tiny.score("", [" The sea"])[0] < 0


def test_long_chat_is_trimmed_from_the_oldest_turns(tiny) -> None:
    filler = "The cats were small and grey. " * 8
    messages = [Message("system", "Be brief.")]
    for i in range(12):
        messages += [Message("user", f"{i} {filler}"), Message("assistant", filler)]
    messages.append(Message("user", "And the sea?"))
    gen = tiny.chat(messages, GREEDY.replace(max_new_tokens=16))
    gen.result()
    assert 0 < gen.stats.prompt_tokens <= 256 - 16
    assert gen.stats.generated_tokens >= 1


def test_too_long_inputs_are_one_line_errors(tiny) -> None:
    long_text = "The cats were small and grey. " * 100
    with pytest.raises(ContextLengthError, match="tokens"):
        tiny.complete(long_text, GREEDY).result()
    with pytest.raises(ContextLengthError):
        tiny.chat([Message("user", long_text)], GREEDY).result()
    with pytest.raises(ContextLengthError):
        tiny.score(long_text, [" more"])


def test_device_and_dtype_choice() -> None:
    from lmassist.backends.hf import pick_device, pick_dtype
    from lmassist.generation import ModelLoadError

    assert pick_device("cpu") == "cpu"
    assert pick_dtype("cpu") == torch.float32
    assert pick_dtype("cpu", "bfloat16") == torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        assert pick_device() in ("cpu", "mps")
        with pytest.raises(ModelLoadError, match="--device cuda"):
            pick_device("cuda")


def test_gguf_cache_key_follows_the_file(tmp_path: Path) -> None:
    import os

    from lmassist.backends.hf_sources import gguf_cache_key

    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"\0" * 100)
    a = gguf_cache_key(f)
    assert gguf_cache_key(f) == a
    f.write_bytes(b"GGUF" + b"\1" * 100)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert gguf_cache_key(f) != a


def test_gguf_cache_is_written_atomically_and_old_versions_go(tmp_path: Path) -> None:
    import os

    from lmassist.backends.hf_sources import converted_gguf, gguf_cache_root

    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"\0" * 100)
    calls = []

    def convert(folder: Path) -> None:
        calls.append(folder)
        (folder / "config.json").write_text("{}")

    first, made = converted_gguf(f, convert)
    assert made and (first / "config.json").exists() and calls[0] != first
    again, made = converted_gguf(f, convert)
    assert again == first and not made and len(calls) == 1

    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise KeyboardInterrupt

    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(KeyboardInterrupt):
        converted_gguf(f, broken)
    assert [p.name for p in gguf_cache_root().iterdir()] == [first.name]  # no half-written folder
    second, made = converted_gguf(f, convert)
    assert made and second != first
    assert not first.exists()  # the stale conversion of the same file is removed


# -- through the real command line ---------------------------------------------------------------


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str, ignore: str = "\0") -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith(ignore)]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow
def test_cli_ask_with_a_local_folder(tiny_gpt2: Path) -> None:
    proc = run_cli("ask", "--no-log", "-m", f"hf:{tiny_gpt2}", "-O", "max_new_tokens", "5",
                   "-O", "temperature", "0", "--stats", "Hello")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "device: cpu" in proc.stderr


def test_cli_unknown_hub_id_offline() -> None:
    proc = run_cli("ask", "--no-log", "-m", "hf:nobody-here/no-such-model", "hi", env={"HF_HUB_OFFLINE": "1"})
    _one_line_error(proc, "hf:nobody-here/no-such-model", "lmassist models pull")


def test_cli_pull_offline_says_what_to_do() -> None:
    proc = run_cli("models", "pull", "hf:gpt2", env={"HF_HUB_OFFLINE": "1"})
    # (`models pull` draws its progress bar before the download starts; that line is not the error)
    _one_line_error(proc, "cannot reach the Hugging Face hub to pull gpt2", "huggingface-cli download gpt2",
                    "hf:/path/to/folder", ignore="pulling hf:gpt2")


def test_cli_folder_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    proc = run_cli("ask", "--no-log", "-m", f"hf:{tmp_path}", "hi")
    _one_line_error(proc, "no config.json")


@pytest.mark.slow
def test_cli_gguf_of_an_unsupported_architecture(tmp_path: Path) -> None:
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "fancy.gguf"
    writer = GGUFWriter(str(path), "fancyarch")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    proc = run_cli("ask", "--no-log", "-m", f"hf:{path}", "hi")
    _one_line_error(proc, "fancyarch", "not supported", "llamacpp:")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cli_device_cuda_without_a_gpu(tiny_gpt2: Path) -> None:
    proc = run_cli("ask", "--no-log", "-m", f"hf:{tiny_gpt2}", "--device", "cuda", "hi")
    _one_line_error(proc, "--device cuda", "--device cpu")


def test_lmassist_error_type_for_generation_failures(tiny) -> None:
    from lmassist.backends.hf_model import _user_error

    err = _user_error(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore"))
    assert isinstance(err, LMAssistError) and "ran out of memory" in str(err) and "\n" not in str(err)


def test_decoding_runs_in_the_callers_thread_with_the_models_thread_count(tiny) -> None:
    """No helper thread: each forward pass runs in the thread that reads the reply, with our torch count.

    A second thread driving torch made libgomp stop spinning between parallel regions (0.6x raw
    ``generate`` on a quiet 2-core machine), so where the work runs is the behaviour under test.
    """
    calls: list[tuple[int, int]] = []
    hook = tiny.hf_model.register_forward_pre_hook(
        lambda module, args: calls.append((threading.get_ident(), torch.get_num_threads()))
    )
    seen: dict[str, object] = {}

    def consume() -> None:
        torch.set_num_threads(3)  # something else in the process changed torch's count
        gen = tiny.complete("Once upon", GREEDY.replace(max_new_tokens=6))
        threads_alive = [threading.active_count() for _ in gen]
        seen.update(ident=threading.get_ident(), alive=threads_alive, gen=gen)

    before = threading.active_count()
    try:
        reader = threading.Thread(target=consume)
        reader.start()
        reader.join()
    finally:
        hook.remove()
        torch.set_num_threads(1)
    gen = seen["gen"]
    assert gen.stats.generated_tokens >= 1
    # one pass for the prompt, then one per further token (and one more that met the end token)
    assert len(calls) == gen.stats.generated_tokens + (gen.stats.stop_reason == "eos")
    assert {ident for ident, _ in calls} == {seen["ident"]}
    assert {n for _, n in calls} == {tiny.threads} == {1}  # the tests' settings fix hf.threads = 1
    assert set(seen["alive"]) == {before + 1}  # the reader itself, and no thread of ours


def test_greedy_with_repetition_penalty_matches_generate(tiny) -> None:
    """Our token picker uses transformers' processors as generate does: same ids, penalty included."""
    opts = GREEDY.replace(repetition_penalty=1.3, max_new_tokens=20)
    prompt = "The cats were small"
    ids = tiny._encode(prompt, special=True)
    gen = tiny.complete(prompt, opts)
    text = gen.result()
    with torch.inference_mode():
        out = tiny.hf_model.generate(**tiny.input_tensors(ids), generation_config=tiny.generation_config(opts, 20))
    raw = out[0, len(ids):].tolist()
    if raw and raw[-1] in tiny.eos_token_ids:
        raw = raw[:-1]
    assert gen.stats.generated_tokens == len(raw)
    assert text == tiny._tokenizer.decode(raw)
    plain = tiny.complete(prompt, opts.replace(repetition_penalty=1.0)).result()
    assert plain != text  # the penalty did change the reply, so the comparison above means something


def test_seeded_sampling_leaves_torchs_global_generator_alone(tiny) -> None:
    """A seed gets its own generator: replies do not reseed the process (training, other replies)."""
    opts = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8, seed=7)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first = tiny.complete("The sea", opts).result()
    after = torch.rand(3)
    assert torch.equal(expected, after)
    assert tiny.complete("The sea", opts).result() == first


def test_threads_setting_is_checked() -> None:
    from lmassist.errors import ModelLoadError
    from lmassist.system import thread_setting

    assert thread_setting(None, "hf.threads") is None
    assert thread_setting("auto", "hf.threads") is None
    assert thread_setting(" AUTO ", "hf.threads") is None
    assert thread_setting(0, "hf.threads") is None
    assert thread_setting(3, "hf.threads") == 3
    assert thread_setting("2", "hf.threads") == 2
    for bad in ("many", -1, 1.5, True, [2]):
        with pytest.raises(ModelLoadError, match="hf.threads must be 'auto'"):
            thread_setting(bad, "hf.threads")


def test_auto_threads_back_off_beside_busy_processes(tiny_gpt2: Path, busy_cores: int) -> None:
    """With every core taken by another process, torch computes with one thread, not all of them."""
    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    model = Registry(PluginManager(load_entry_points=False)).load("hf:" + str(tiny_gpt2), threads="auto")
    try:
        counts: list[int] = []
        hook = model.hf_model.register_forward_pre_hook(lambda module, args: counts.append(torch.get_num_threads()))
        model.complete("Once", GREEDY.replace(max_new_tokens=4)).result()
        hook.remove()
    finally:
        model.close()
        torch.set_num_threads(1)
    assert model.info.details["threads"] == "auto"
    assert model.info.details["cores"] == busy_cores
    assert counts and set(counts) == {1}
