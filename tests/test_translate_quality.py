"""Translation quality on the real multilingual model (Gemma-3-270M) and the output clean-up.

Behaviour only, never benchmark figures (those come from ``lmassist eval-task translate``): a short
sentence comes out in French, with no leftover "English:" label, and Markdown structure survives.
The Gemma tests skip where that optional catalog model is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import USER_MODELS

from lmassist.generation import Model
from lmassist.tasks.translate import Translator, clean_translation
from lmassist.tasks.translate_shots import SHOT_SOURCES, SHOTS

EVAL_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eval"


def test_clean_translation_cuts_labels_quotes_and_loops() -> None:
    labels = ("English", "French")
    assert clean_translation(" Il fait beau.\nEnglish: It is nice.", "It is nice.", labels) == "Il fait beau."
    assert clean_translation(" French: Bonjour.", "Hello.", labels) == "Bonjour."
    assert clean_translation(' "Bonjour."', "Hello.", labels) == "Bonjour."
    assert clean_translation(' "Bonjour."', '"Hello."', labels) == '"Bonjour."'  # the source had them
    assert clean_translation("« Bonjour", "Hello", labels) == "Bonjour"
    assert clean_translation("Il a dit « oui »", "He said 'yes'.", labels) == "Il a dit « oui »"  # balanced: kept
    assert clean_translation("Il est très très très très grand.", "He is very tall.", labels) == "Il est très grand."
    assert clean_translation("oui non oui non oui non", "yes no", labels) == "oui non"
    plain = "Je ne sais pas, je ne sais pas."  # said twice: left alone
    assert clean_translation(plain, "I don't know, I don't know.", labels) == plain


def test_shots_cover_every_source_sentence() -> None:
    assert all(len(pairs) == len(SHOT_SOURCES) for pairs in SHOTS.values())


def test_shots_are_not_taken_from_the_evaluation_files() -> None:
    """The few-shot pairs must be our own, or the dev-set figures would be inflated."""
    files = sorted(EVAL_DIR.glob("translation-*.jsonl")) if EVAL_DIR.is_dir() else []
    if not files:
        pytest.skip("no shared evaluation files here")
    dev: set[str] = set()
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                dev.update(" ".join(v.split()).lower() for v in json.loads(line).values())
    mine = {s.lower() for s in SHOT_SOURCES} | {s.lower() for pairs in SHOTS.values() for s in pairs}
    assert not mine & dev


@pytest.fixture(scope="module")
def gemma() -> Iterator[Model]:
    from lmassist.modelfiles import GEMMA3_270M
    from lmassist.plugins import PluginManager
    from lmassist.registry import Registry

    if not (USER_MODELS / GEMMA3_270M.filename).exists():
        pytest.skip("Gemma-3-270M is not installed (lmassist models pull gemma3-270m)")
    model = Registry(PluginManager(load_entry_points=False)).load("llamacpp:gemma3-270m", threads=1)
    yield model
    model.close()


def test_gemma_translates_a_short_sentence_to_french(gemma) -> None:
    t = Translator(gemma, "fr")
    out = t.translate_sentence("My brother has a big black dog.")
    low = out.lower()
    assert "\n" not in out and "english" not in low and "french" not in low
    assert "frère" in low and "chien" in low and "brother" not in low


def test_gemma_translation_keeps_markdown(gemma) -> None:
    doc = "# My garden\n\n- The children are playing.\n- See the [photos](https://example.com/p).\n\n```\nkeep me\n```\n"
    out = Translator(gemma, "French").translate_document(doc)
    lines = out.splitlines()
    assert lines[0].startswith("# ") and "jardin" in lines[0].lower() and "enfants" in out
    assert sum(1 for ln in lines if ln.startswith("- ")) == 2
    assert "](https://example.com/p)" in out and out.endswith("```\nkeep me\n```\n")
    assert "english" not in out.lower()
