"""Calendar arithmetic shared by the rules (pure)."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from zoneinfo import ZoneInfo


def add_months(d: date, months: int) -> date:
    """The same day `months` calendar months later, clamped to the end of the month (31 Jan + 1 -> 28/29 Feb)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


#: The hospital's time zone when a service has no HOSPITAL_TIMEZONE setting of its own (the guideline's region).
HOSPITAL_TZ = ZoneInfo("Europe/Paris")


def local_day(at: datetime, tz: ZoneInfo = HOSPITAL_TZ) -> date:
    """The hospital-local calendar day of an aware time (a result drawn at 00:30 in Paris belongs to that day, which
    is still the previous day in UTC). Day counts (recency windows, "7 days before the procedure") use it."""
    return at.astimezone(tz).date()
