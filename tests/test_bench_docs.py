"""The docs benchmark runs end to end on a tiny dev set (figures printed, none asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from lmassist.bench import docs


def test_bench_prints_retrieval_and_scale_figures(tmp_path: Path):
    dev = tmp_path / "dev"
    (dev / "docs").mkdir(parents=True)
    (dev / "docs" / "boats.md").write_text("# Boats\n\nThe ferry leaves at noon from pier four.\n")
    (dev / "docs" / "bread.md").write_text("# Bread\n\nRye bread needs a sourdough starter.\n")
    rows = [{"question": "When does the ferry leave?", "answers": ["noon"], "answerable": True, "doc": "boats.md"},
            {"question": "What does rye bread need?", "answers": ["starter"], "answerable": True, "doc": "bread.md"},
            {"question": "Who baked it?", "answers": [], "answerable": False, "doc": None}]
    (dev / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = tmp_path / "text.txt"
    text.write_text("To be, or not to be, that is the question.\n\n" * 200)
    lines: list[str] = []
    docs.run(dev, text, files=20, mb=0.1, out=lines.append)
    report = "\n".join(lines)
    assert "qa passages (in-memory fts5)" in report and "held-out hit@1" in report
    assert "update one file s" in report and "query median ms" in report


def test_eval_task_docs_qa_prints_retrieval_f1_and_abstention_per_half(tmp_path: Path, default_gguf) -> None:
    from conftest import run_cli

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "boats.md").write_text("# Boats\n\nThe ferry leaves at noon from pier four.\n")
    (folder / "bread.md").write_text("# Bread\n\nRye bread needs a sourdough starter.\n")
    rows = [{"question": "When does the ferry leave?", "answers": ["noon"], "answerable": True, "doc": "boats.md",
             "split": "tune"},
            {"question": "What does rye bread need?", "answers": ["a sourdough starter"], "answerable": True,
             "doc": "bread.md", "split": "held-out"},
            {"question": "Who baked the Viennese bread?", "answers": [], "answerable": False, "doc": "bread.md",
             "split": "held-out"}]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("eval-task", "docs-qa", str(folder), str(questions), "--json", "--settings", timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    # --settings scores other rankings on the same reading: with and without calibration, the default first
    labels = list(dict.fromkeys(r["setting"] for r in results))
    assert labels[0].endswith("(default)") and any(x.startswith("calibration 0,") for x in labels)
    report = {r["half"]: r for r in results if r["setting"] == labels[0]}
    assert set(report) == {"all", "tune", "held-out"}
    assert report["all"]["hit@1"] == 1.0 and report["all"]["hit@3"] == 1.0  # two notes: retrieval is easy
    assert report["held-out"]["abstain_unanswerable"] == 1.0  # "Viennese" is in no note
    assert report["tune"]["answerable_n"] == 1 and report["held-out"]["unanswerable_n"] == 1
    assert 0.0 <= report["all"]["f1"] <= 1.0
