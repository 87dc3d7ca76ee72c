"""The README's set-up commands are the ones CI runs, and the commands it tours exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1].split("## A tour", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_ci_runs_the_readme_test_command():
    install_and_run, install_and_test = readme_commands()
    assert install_and_test.rstrip().endswith("pytest")
    assert install_and_test in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install_and_run.rstrip().endswith("lmassist")


def test_toured_commands_exist():
    from click.testing import CliRunner

    from lmassist.cli import build_cli

    cli = build_cli()
    tour = (ROOT / "README.md").read_text(encoding="utf-8").split("## A tour", 1)[1].split("###", 1)[0]
    for name in sorted(set(re.findall(r"^lmassist (\w[\w-]*)", tour, re.M))):
        assert name in cli.commands, name
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0
