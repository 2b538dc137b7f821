"""Staff-style edits of a copy of the shipped KB, and how long to wait for their reload; shared
by the reload and live-KB tests."""

from __future__ import annotations

from pathlib import Path

# How long a test waits for a reload: it bounds a hang, not the speed. The promise of a saved
# edit answering within 10 s is measured by benchmarks/latency.py --only reload, and a loaded
# 2-core machine can take longer.
RELOAD_TIMEOUT = 120

TWO_ALTERNATES = "    alternates:\n      - can i pay in parts\n      - split payment\n"


def cut_alternates(path: Path, entry_id: str) -> int:
    """Leave the entry two alternates (it needs 6), whatever it had; returns the line of its
    `alternates:`."""
    text = path.read_text(encoding="utf-8")
    start = text.index("    alternates:", text.index(f"id: {entry_id}"))
    end = text.index("    answer:", start)
    path.write_text(text[:start] + TWO_ALTERNATES + text[end:], encoding="utf-8")
    return text[:start].count("\n") + 1
