"""The ``train``, ``eval`` and ``optimize`` commands for the in-house models (``bench inhouse`` lives
with the other benchmarks, in :mod:`lmassist.bench.inhouse`).

They register through the same ``register_commands`` hook a third-party plugin uses. torch and the
models are imported inside the commands, so ``lmassist --help`` stays fast. Every failure is an
:class:`~lmassist.generation.LMAssistError`: one line, no traceback.

``python -m lmassist.commands.inhouse train ...`` runs the same commands without the rest of the
command line; ``train --devices N`` uses it to start N processes under ``torch.distributed.run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from lmassist import hookimpl
from lmassist.config import valid_name
from lmassist.errors import INTERRUPTED, LMAssistError, exit_for

TRAIN_HELP = """Train your own language model on FILES (text or Markdown files, or folders of them).

\b
The last 10% of the text is kept aside for validation; the weights with the best
validation loss are saved as the model inhouse:NAME, ready to use anywhere a model
name is accepted:

\b
  lmassist ask -m inhouse:NAME "To be, or not"   # continue a text, streamed
  lmassist chat -m inhouse:NAME                  # line by line in the terminal
  lmassist   then  /model inhouse:NAME           # in the chat app
  lmassist eval NAME held-out.txt                # its perplexity
  lmassist optimize NAME --quantize int8         # a copy a quarter of the size on disk

\b
Examples:
  lmassist train poems.txt --name poems --minutes 10
  lmassist train notes/ --arch lstm --size tiny --steps 2000 --name notes
  lmassist train corpus.txt --tokenizer bpe --name big --minutes 60 --devices 2
  lmassist train poems.txt --name poems --resume          # continue where it stopped

\b
Architectures: transformer (GPT-style; grows best with time and data), lstm (the
classic recipe; on a CPU it learns the most in the first minutes), rnn (the
simplest; a teaching baseline).
Sizes: tiny (~0.35M parameters: learns the most in a few minutes on a CPU),
small (~0.8M, what inhouse:shakespeare is), medium (~3M, for hours or a GPU).
The default, auto, picks tiny for --minutes 5 or less on a CPU, else small.
Ctrl+C saves a checkpoint and stops; --resume continues from it.
"""


def _models_dir() -> Path:
    from lmassist.config import paths

    return paths().models / "inhouse"


def checkpoint_path(name: str) -> Path:
    """A model name (``shakespeare``, ``inhouse:shakespeare``) or a checkpoint folder path."""
    bare = name.split(":", 1)[1] if name.startswith("inhouse:") else name
    path = Path(bare).expanduser()
    if (path / "config.json").exists():
        return path
    candidate = _models_dir() / bare
    if candidate.exists():
        return candidate
    from lmassist.inhouse.pretrained import shipped_models

    shipped = shipped_models()
    if bare in shipped:
        return shipped[bare]
    known = sorted({p.name for p in _models_dir().glob("*") if (p / "config.json").exists()} | set(shipped))
    hint = f"; known: {', '.join(known)}" if known else "; train one with 'lmassist train'"
    raise LMAssistError(f"unknown in-house model {name!r}{hint}")


def train_command(
    files: tuple[str, ...],
    name: str,
    minutes: float | None,
    steps: int | None,
    resume: bool,
    devices: int,
    out: str | None,
    no_train_state: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Run ``train`` with the command line's options; ``options`` are :class:`TrainConfig` fields."""
    if minutes is not None and steps is not None:
        raise LMAssistError("give --minutes or --steps, not both")
    folder = Path(out).expanduser() if out else _models_dir() / valid_name(name)
    if devices > 1 and "WORLD_SIZE" not in os.environ:
        _relaunch(devices)
        return
    if not resume and (folder / "train_state.safetensors").exists() and os.environ.get("RANK", "0") == "0":
        click.echo(f"note: replacing the model in {folder} (use --resume to continue it)", err=True)
    from lmassist.inhouse.train import TrainConfig, train

    cfg = TrainConfig(steps=steps, minutes=minutes, save_train_state=not no_train_state, **options)
    result = train(files, folder, cfg, resume=resume, log=click.echo, progress=not quiet)
    if result.path is None:  # not rank 0
        return
    import math

    click.echo(
        f"{'stopped' if result.interrupted else 'done'} after {result.step:,} steps, {result.tokens:,} tokens "
        f"in {result.seconds:.0f} s ({result.tokens_per_s:,.0f} tokens/s)"
        + (f", peak memory {result.peak_memory_mb:,.0f} MB" if result.peak_memory_mb is not None else "")
    )
    best = result.best_val_loss
    if not math.isnan(best):
        click.echo(f"best validation loss {best:.4f} nats/token (perplexity {math.exp(best):.2f}) on the first "
                   f"{cfg.eval_tokens:,} validation tokens")
    if result.final_val_loss is not None:
        click.echo(f"full validation split: {result.final_val_loss:.4f} nats/token "
                   f"(perplexity {math.exp(result.final_val_loss):.2f})")
    click.echo(f"saved to {result.path}" + (f"  (use it as inhouse:{folder.name})" if not out else ""))
    if result.interrupted:
        click.echo("resume with the same command plus --resume")


def _relaunch(devices: int) -> None:
    """Start ``devices`` copies of this command under torch.distributed.run (torchrun)."""
    args = [a for a in sys.argv[1:]]
    cleaned: list[str] = []
    skip = False
    for a in args:  # drop --devices N / --devices=N; the workers see WORLD_SIZE instead
        if skip:
            skip = False
            continue
        if a == "--devices":
            skip = True
            continue
        if a.startswith("--devices="):
            continue
        cleaned.append(a)
    try:
        i = cleaned.index("train")
    except ValueError:
        raise LMAssistError("--devices needs the 'train' command on the command line") from None
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
           "-m", "lmassist.commands.inhouse", *cleaned[i:]]
    click.echo(f"starting {devices} training processes: {' '.join(cmd[2:])}", err=True)
    code = subprocess.call(cmd)
    if code != 0:
        raise LMAssistError(f"distributed training failed (exit status {code})")


def eval_command(
    model_name: str, file: str, baseline: str | None, order: int, as_json: bool, baseline_data: tuple[str, ...] = ()
) -> None:
    import json
    import math

    from lmassist.inhouse.checkpoint import load_checkpoint
    from lmassist.inhouse.data import encode_ids, normalize, read_text_file
    from lmassist.inhouse.evaluate import evaluate_ids

    folder = checkpoint_path(model_name)
    ck = load_checkpoint(folder)
    path = Path(file).expanduser()
    if path.is_dir():
        raise LMAssistError(f"{path} is a folder; give one text file")
    if not path.exists():
        raise LMAssistError(f"no such file: {path}")
    text = normalize(read_text_file(path), ck.tokenizer.lowercase)  # type: ignore[attr-defined]
    if len(text) < 2:
        raise LMAssistError(f"{path} is too short to evaluate")
    ids = encode_ids(ck.tokenizer, text)
    if len(ids) < 2:
        raise LMAssistError(f"{path} is too short to evaluate")
    result = evaluate_ids(ck.model, ids, characters=len(text) - 1)
    rows = {f"inhouse:{folder.name}": result.to_dict()}
    if baseline == "ngram":
        from lmassist.inhouse.ngram import baseline_for_checkpoint

        lm, train_info = baseline_for_checkpoint(ck, order, baseline_data or None)
        rows[f"{order}-gram Kneser-Ney ({train_info})"] = lm.evaluate(ck.tokenizer.encode(text), len(text) - 1).to_dict()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{path}: {len(text):,} characters, {result.tokens:,} tokens scored")
    click.echo(f"{'model':<46} {'nats/token':>10} {'bits/char':>10} {'perplexity':>11}")
    for label, r in rows.items():
        click.echo(f"{label:<46} {r['nats_per_token']:>10.4f} {r['bits_per_char']:>10.4f} {r['perplexity']:>11.3f}")
    if len(rows) == 2:
        a, b = (r["nats_per_token"] for r in rows.values())
        click.echo(f"the neural model's perplexity is {math.exp(b - a):.2f}× lower than the baseline's"
                   if b > a else "the baseline does better on this text: train longer or on more data")


def optimize_command(
    name: str, quantize: str | None, prune: float, new_name: str | None, file: str | None, rounds: int = 5
) -> None:
    from lmassist.inhouse.optimize import optimize_checkpoint

    if not quantize and prune <= 0:
        raise LMAssistError("nothing to do: give --quantize int8 and/or --prune FRACTION")
    if not 0 <= prune < 1:
        raise LMAssistError(f"--prune must be a fraction in [0, 1), got {prune}")
    if rounds < 1:
        raise LMAssistError(f"--rounds must be at least 1, got {rounds}")
    source = checkpoint_path(name)
    suffix = "-".join(([quantize] if quantize else []) + ([f"pruned{int(prune * 100)}"] if prune else []))
    target = _models_dir() / valid_name(new_name or f"{source.name}-{suffix}")
    if target.resolve() == source.resolve():
        raise LMAssistError("--name must differ from the source model")
    click.echo(f"writing {target.name}, then measuring both ({rounds} rounds of decoding each)...", err=True)
    report = optimize_checkpoint(source, target, quantize=quantize, prune=prune, eval_file=file, rounds=rounds)
    for line in report.lines():
        click.echo(line)
    click.echo(f"saved to {target}  (use it as inhouse:{target.name})")


def _register(cli: Any) -> None:
    @cli.command("train", help=TRAIN_HELP, short_help="Train your own language model on text files.")
    @click.argument("files", nargs=-1, required=True, type=click.Path())
    @click.option("--arch", type=click.Choice(["transformer", "lstm", "rnn"]), default="transformer", show_default=True,
                  help="Model architecture.")
    @click.option("--tokenizer", type=click.Choice(["char", "bpe"]), default="char", show_default=True,
                  help="char: one token per character; bpe: byte-level BPE learned from your text.")
    @click.option("--name", default=None, help="Model name (inhouse:NAME). Default: the first file's name.")
    @click.option("--size", type=click.Choice(["auto", "tiny", "small", "medium"]), default="auto",
                  show_default=True,
                  help="Size preset. auto: tiny for a --minutes budget of 5 or less on a CPU, else small.")
    @click.option("--minutes", type=float, default=None, help="Wall-clock budget; the schedule fits it.")
    @click.option("--steps", type=int, default=None, help="Number of optimizer steps (default 1000).")
    @click.option("--resume", is_flag=True, help="Continue a stopped or finished run of NAME.")
    @click.option("--devices", type=int, default=1, show_default=True,
                  help="Train with N processes (DistributedDataParallel; GPUs when present).")
    @click.option("--out", type=click.Path(file_okay=False), default=None,
                  help="Write the checkpoint folder here instead of the models folder.")
    @click.option("--lowercase", is_flag=True, help="Lowercase all text (smaller vocabulary).")
    @click.option("--batch-size", type=int, default=None, help="Sequences per step per process (preset).")
    @click.option("--lr", type=float, default=None, help="Peak learning rate (preset).")
    @click.option("--dropout", type=float, default=0.0, show_default=True, help="Dropout (use for long runs).")
    @click.option("--eval-interval", type=int, default=250, show_default=True, help="Validate every N steps.")
    @click.option("--seed", type=int, default=1337, show_default=True)
    @click.option("--bpe-vocab", type=int, default=1024, show_default=True, help="BPE vocabulary size.")
    @click.option("--no-train-state", is_flag=True,
                  help="Do not keep optimizer state (smaller folder, cannot --resume).")
    @click.option("--threads", type=int, default=None,
                  help="CPU threads per process (default: all cores; fewer helps on a busy machine).")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    def train(files: tuple[str, ...], name: str | None, **kw: Any) -> None:
        name = name or Path(files[0]).stem or "model"
        train_command(files, name=name, **kw)

    @cli.command("eval", short_help="Measure a model's perplexity on a text file.")
    @click.argument("model")
    @click.argument("file", type=click.Path())
    @click.option("--baseline", type=click.Choice(["ngram"]), default=None,
                  help="Also train an n-gram model on the model's training split and show it beside.")
    @click.option("--order", type=int, default=5, show_default=True, help="n-gram order for --baseline.")
    @click.option("--baseline-data", multiple=True, type=click.Path(),
                  help="The text the model was trained on, when it is not where training found it "
                       "(the baseline trains on its first 90%).")
    @click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
    def eval_(model: str, file: str, baseline: str | None, order: int, as_json: bool,
              baseline_data: tuple[str, ...]) -> None:
        """Print cross-entropy (nats per token, bits per character) and perplexity of MODEL on FILE.

        \b
        Examples:
          lmassist eval shakespeare sonnets.txt
          lmassist eval inhouse:poems held-out.txt --baseline ngram
        """
        eval_command(model, file, baseline, order, as_json, baseline_data)

    @cli.command("optimize", short_help="Make a copy of a model a quarter of the size on disk (int8).")
    @click.argument("name")
    @click.option("--quantize", type=click.Choice(["int8"]), default=None,
                  help="Store every weight matrix as int8 with one scale per output row (about a "
                       "quarter of the size); loading turns it back into fp32.")
    @click.option("--prune", type=float, default=0.0, show_default=True,
                  help="Fraction of each weight matrix's smallest weights to set to zero, permanently. "
                       "Zeros are stored and computed like any weight: this alone changes neither size "
                       "nor speed.")
    @click.option("--name", "new_name", default=None, help="Name of the new model (default NAME-int8...).")
    @click.option("--file", type=click.Path(), default=None,
                  help="Text to measure perplexity on (default: the validation split it was trained on, "
                       "when that file is still there).")
    @click.option("--rounds", type=int, default=5, show_default=True,
                  help="Rounds of 200 decoded tokens per model, alternating, for the tokens/s figure "
                       "(more rounds: steadier on a busy machine).")
    def optimize(name: str, quantize: str | None, prune: float, new_name: str | None, file: str | None,
                 rounds: int) -> None:
        """Write a new model from NAME with int8 weights and/or pruning, then measure both side
        by side (size, tokens/s in interleaved rounds, perplexity) and say what the copy is.

        \b
        What to expect: --quantize int8 gives a file about 0.26x the size at the
        same perplexity. It is not faster: the weights are turned back into fp32
        when the model loads, because a model this small decodes faster in fp32 than
        with int8 arithmetic. Once loaded it is the same model, at the same speed
        and memory. --prune zeroes weights to show how much a model tolerates; it
        saves neither space nor time. Measured figures: docs/benchmarks.md.

        \b
        Examples:
          lmassist optimize shakespeare --quantize int8
          lmassist optimize poems --quantize int8 --prune 0.3 --name poems-small
          lmassist ask -m inhouse:poems-small "Roses are"
        """
        optimize_command(name, quantize, prune, new_name, file, rounds)


@hookimpl
def register_commands(cli: Any) -> None:
    """Add train, eval and optimize to the lmassist command line."""
    _register(cli)


def main() -> None:
    """Run these commands alone (used by ``train --devices N`` to start the worker processes)."""
    group = click.Group("lmassist")
    _register(group)
    try:
        group.main(standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        sys.exit(INTERRUPTED)
    except (KeyboardInterrupt, Exception) as e:  # noqa: BLE001 - one line, as for every lmassist command
        exit_for(e)


if __name__ == "__main__":
    main()
