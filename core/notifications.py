"""What a queue tells its webhook after a selection run: items are waiting again, today's budget is
spent, or its traffic drifts. Each message is Slack-compatible JSON (``text``), with the event's
figures beside it for other receivers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Selected:
    """A selection run's outcome, as the notifications need it."""

    queue: str
    waiting_before: int
    added: int
    picked_today_before: int
    budget_per_day: int
    drifting: bool = False
    audit_share: float = 0.0


def events(run: Selected, *, link: str = "") -> list[dict[str, Any]]:
    """The notifications this run calls for (none, most runs)."""
    where = f" <{link}|open the queue>" if link else ""
    out: list[dict[str, Any]] = []
    if run.waiting_before == 0 and run.added > 0:
        out.append(
            _event(
                run,
                "items_waiting",
                f"review-router: {run.added} new items wait in queue {run.queue}.{where}",
            )
        )
    picked = run.picked_today_before + run.added
    if run.picked_today_before < run.budget_per_day <= picked:
        out.append(
            _event(
                run,
                "budget_reached",
                f"review-router: queue {run.queue} has picked its {run.budget_per_day} items for today; "
                "no more until tomorrow (UTC).",
            )
        )
    if run.drifting:
        out.append(
            _event(
                run,
                "drift",
                f"review-router: traffic in queue {run.queue} drifts from what came before; "
                f"its audit share is raised to {run.audit_share:.0%} while it does.",
            )
        )
    return out


def _event(run: Selected, event: str, text: str) -> dict[str, Any]:
    return {
        "text": text,
        "event": event,
        "queue": run.queue,
        "added": run.added,
        "picked_today": run.picked_today_before + run.added,
        "budget_per_day": run.budget_per_day,
    }
