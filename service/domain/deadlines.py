"""EU AI Act Article 73 reporting clocks for serious incidents.

A provider must report a serious incident to the market surveillance authority:

* not later than **2 days** after becoming aware of a widespread infringement or a serious
  and irreversible disruption of critical infrastructure (Article 73(3));
* not later than **10 days** after becoming aware of a death (Article 73(4));
* not later than **15 days** after becoming aware of any other serious incident
  (Article 73(2)).

The registry counts days as exact 24-hour periods from ``aware_at`` (timestamps are UTC, so
there are no daylight-saving gaps). The deadline is met by an initial report sent *at or
before* ``due_at``; an incident is overdue from the first instant after ``due_at`` while no
initial report is recorded. When several paragraphs apply, the shortest deadline wins.
Incidents that are not serious, or that were rejected or merged as duplicates, have no clock
(the surviving incident carries it). That rule is written once, as the incidents table's
generated column ``article73_clock``; the view here, the ``?overdue=true`` filter and the
compliance report all read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from service.schemas.incidents import Deadline

__all__ = ["compute_deadline", "is_overdue", "remaining_seconds"]

WIDESPREAD_OR_INFRASTRUCTURE_DAYS = 2
DEATH_DAYS = 10
OTHER_DAYS = 15


def compute_deadline(
    *,
    serious: bool,
    serious_kind: str | None,
    death: bool,
    widespread: bool,
    aware_at: datetime,
) -> Deadline | None:
    """The Article 73 deadline, or None when the incident is not serious."""
    if not serious:
        return None
    if widespread or serious_kind == "critical_infrastructure":
        days, basis = (
            WIDESPREAD_OR_INFRASTRUCTURE_DAYS,
            "art73(3) widespread or critical infrastructure",
        )
    elif death:
        days, basis = DEATH_DAYS, "art73(4) death"
    else:
        days, basis = OTHER_DAYS, "art73(2) other"
    return Deadline(days=days, basis=basis, due_at=aware_at + timedelta(days=days))  # type: ignore[arg-type]


def is_overdue(
    *,
    deadline: Deadline | None,
    clock: bool,
    initial_report_at: datetime | None,
    now: datetime,
) -> bool:
    """Past the deadline with no initial report to the authority recorded; ``clock`` is
    the incident's ``article73_clock``."""
    if deadline is None or not clock or initial_report_at is not None:
        return False
    return now > deadline.due_at


def remaining_seconds(
    *, deadline: Deadline | None, clock: bool, initial_report_at: datetime | None, now: datetime
) -> float | None:
    """Seconds left until the deadline (negative once past), or None when no clock runs."""
    if deadline is None or not clock or initial_report_at is not None:
        return None
    return (deadline.due_at - now).total_seconds()
