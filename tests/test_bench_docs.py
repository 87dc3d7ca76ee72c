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
    assert "rank-bm25 (today)" in report and "held-out hit@1" in report
    assert "update one file s" in report and "query median ms" in report
