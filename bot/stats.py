"""`minerdesk stats`: how the handoff to sales reps is doing, from the database."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from storage.handoffs import HandoffStats


def handoff_figures(stats: HandoffStats, days: int) -> dict[str, Any]:
    """The figures staff ask for, as plain JSON-ready values (None where nothing to say)."""
    minutes = sorted(seconds / 60 for seconds in stats.first_reply_seconds)
    ratings = Counter(stats.ratings)
    return {
        "days": days,
        "handoffs": stats.handoffs,
        "handoffs_per_day": round(stats.handoffs / days, 2),
        "per_day": dict(stats.per_day),
        "conversations": stats.conversations,
        "handoff_share": (
            round(stats.handoffs / stats.conversations, 4) if stats.conversations else None
        ),
        "first_reply_minutes": {
            "answered": len(minutes),
            "median": round(statistics.median(minutes), 1) if minutes else None,
            "p90": round(_percentile(minutes, 0.9), 1) if minutes else None,
        },
        "satisfaction": {
            "ratings": len(stats.ratings),
            "average": round(statistics.mean(stats.ratings), 2) if stats.ratings else None,
            "distribution": {str(score): ratings.get(score, 0) for score in range(1, 6)},
        },
    }


def _percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def format_figures(figures: dict[str, Any]) -> str:
    """The figures as a short report for a terminal."""
    reply = figures["first_reply_minutes"]
    rating = figures["satisfaction"]
    share = figures["handoff_share"]
    lines = [
        f"Handoffs to sales reps, last {figures['days']} days",
        f"  handoffs:                   {figures['handoffs']} "
        f"({figures['handoffs_per_day']} a day)",
        f"  conversations with the bot: {figures['conversations']}",
        f"  share handed off:           {'–' if share is None else f'{share:.1%}'}",
    ]
    if reply["answered"]:
        lines.append(
            f"  time to first staff reply:  median {reply['median']} min, "
            f"p90 {reply['p90']} min ({reply['answered']} answered)"
        )
    else:
        lines.append("  time to first staff reply:  – (none answered)")
    if rating["ratings"]:
        spread = ", ".join(f"{score}★ {n}" for score, n in rating["distribution"].items())
        lines.append(
            f"  satisfaction:               {rating['average']} / 5 from "
            f"{rating['ratings']} ratings ({spread})"
        )
    else:
        lines.append("  satisfaction:               – (no ratings)")
    if figures["per_day"]:
        lines.append("  per day:")
        lines += [f"    {day}  {count}" for day, count in figures["per_day"].items()]
    return "\n".join(lines)
