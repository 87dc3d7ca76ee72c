"""Models shipped inside the package: each subfolder is a checkpoint (see checkpoint.py).

``inhouse:shakespeare`` works right after install because its folder lives here. How each one was
trained, with the exact command, is in README.md beside this file.
"""

from __future__ import annotations

from pathlib import Path


def shipped_models() -> dict[str, Path]:
    """Name → checkpoint folder for every model that ships with lmassist."""
    here = Path(__file__).parent
    return {p.name: p for p in sorted(here.iterdir()) if (p / "config.json").is_file()}
