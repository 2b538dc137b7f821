"""`minerdesk stats`: how the FAQ and the handoff to sales reps are doing, from the database."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from typing import Any

from domain.faq_log import FaqStats
from domain.handoffs import HandoffStats


def handoff_figures(stats: HandoffStats, days: int) -> dict[str, Any]:
    """The figures staff ask for, as plain JSON-ready values (None where nothing to say),
    with the same figures for each customer channel under "by_channel"."""
    return {
        "days": days,
        "handoffs_per_day": round(stats.handoffs / days, 2),
        "per_day": dict(stats.per_day),
        **_handoff_figures(stats),
        "by_channel": {
            channel: _handoff_figures(figures) for channel, figures in stats.by_channel.items()
        },
    }


def _handoff_figures(stats: HandoffStats) -> dict[str, Any]:
    """Handoffs, conversations, time to first reply and ratings of `stats`."""
    minutes = sorted(seconds / 60 for seconds in stats.first_reply_seconds)
    ratings = Counter(stats.ratings)
    return {
        "handoffs": stats.handoffs,
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
    if figures["by_channel"]:
        lines.append("  by the customer's channel:")
        lines += [
            f"    {channel}: {_channel_line(of_channel)}"
            for channel, of_channel in figures["by_channel"].items()
        ]
    return "\n".join(lines)


def _channel_line(figures: dict[str, Any]) -> str:
    """One channel's figures on a line: handoffs of conversations, first reply, ratings."""
    share = figures["handoff_share"]
    reply = figures["first_reply_minutes"]
    rating = figures["satisfaction"]
    parts = [
        f"{figures['handoffs']} handoffs of {figures['conversations']} conversations"
        + ("" if share is None else f" ({share:.1%})"),
        f"first reply median {reply['median']} min" if reply["answered"] else "none answered",
        f"{rating['average']} / 5 from {rating['ratings']} ratings"
        if rating["ratings"]
        else "no ratings",
    ]
    return ", ".join(parts)


def faq_figures(stats: FaqStats, questions: Mapping[str, str]) -> dict[str, Any]:
    """The FAQ's figures as JSON-ready values; `questions` gives each entry id its question
    (an entry since removed from the KB has None)."""
    total = stats.questions

    def counted(decision: str) -> dict[str, Any]:
        count = stats.decisions.get(decision, 0)
        return {"count": count, "share": round(count / total, 4) if total else None}

    votes = sorted(stats.votes.items(), key=lambda item: (-item[1][1], -item[1][0], item[0]))
    return {
        "questions": total,
        "answered": counted("answer"),
        "suggested": counted("suggest"),
        "fallback": counted("fallback"),
        "languages": dict(Counter(stats.languages).most_common()),
        # Questions by the customer's channel: how many, and how many answered.
        "channels": {
            channel: {"questions": sum(counts.values()), "answered": counts.get("answer", 0)}
            for channel, counts in stats.channels.items()
        },
        "votes": [
            {"entry_id": entry_id, "question": questions.get(entry_id), "up": up, "down": down}
            for entry_id, (up, down) in votes
        ],
        "top_answered": [
            {"entry_id": entry_id, "question": questions.get(entry_id), "count": count}
            for entry_id, count in stats.answered
        ],
        "top_missed": [{"question": text, "count": count} for text, count in stats.missed],
    }


def format_faq_figures(figures: dict[str, Any], days: int) -> str:
    """The FAQ's figures as a short report for a terminal."""
    lines = [f"FAQ, last {days} days", f"  questions:                  {figures['questions']}"]
    for key, label in (
        ("answered", "answered"),
        ("suggested", "suggestions offered"),
        ("fallback", "fallbacks"),
    ):
        share = figures[key]["share"]
        lines.append(
            f"  {label + ':':<28}{figures[key]['count']}"
            + ("" if share is None else f" ({share:.1%})")
        )
    spread = ", ".join(f"{language} {n}" for language, n in figures["languages"].items())
    lines.append(f"  languages:                  {spread or '–'}")
    channels = ", ".join(
        f"{channel} {counts['questions']} ({counts['answered']} answered)"
        for channel, counts in figures["channels"].items()
    )
    lines.append(f"  channels:                   {channels or '–'}")
    sections: list[tuple[str, list[str]]] = [
        (
            "most answered",
            [
                f"{item['count']:>6}  {_entry(item['entry_id'], item['question'])}"
                for item in figures["top_answered"]
            ],
        ),
        (
            "most missed",
            [f"{item['count']:>6}  {item['question']}" for item in figures["top_missed"]],
        ),
        (
            "votes (👍 / 👎), most 👎 first",
            [
                f"{item['up']:>3} / {item['down']:<3} {_entry(item['entry_id'], item['question'])}"
                for item in figures["votes"]
            ],
        ),
    ]
    for title, rows in sections:
        lines.append(f"  {title}:" + ("" if rows else " –"))
        lines += [f"  {row}" for row in rows]
    return "\n".join(lines)


def _entry(entry_id: str, question: str | None) -> str:
    return f"[{entry_id}] {question}" if question else f"[{entry_id}] (no longer in the KB)"
