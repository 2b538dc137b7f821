"""Staff-style edits of a copy of the shipped KB, shared by the reload and live-KB tests."""

from __future__ import annotations

from pathlib import Path

TWO_ALTERNATES = "    alternates:\n      - can i pay in parts\n      - split payment\n"


def cut_alternates(path: Path, entry_id: str) -> int:
    """Leave the entry two alternates (it needs 6), whatever it had; returns the line of its
    `alternates:`."""
    text = path.read_text(encoding="utf-8")
    start = text.index("    alternates:", text.index(f"id: {entry_id}"))
    end = text.index("    answer:", start)
    path.write_text(text[:start] + TWO_ALTERNATES + text[end:], encoding="utf-8")
    return text[:start].count("\n") + 1
