from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.systemic_planner.rules import AsOf, Recency, as_parsed_utc
from shared.settings import Settings


class SystemicSettings(Settings):
    service_name: str = "systemic-planner"
    http_port: int = 8103
    # Recency windows: past them an input is "to measure again", never used to dose (defaults justified in
    # rules.Recency and the README).
    creatinine_max_age_days: float = 30
    weight_max_age_days: float = 30
    vitamin_d_max_age_days: float = 90
    calcium_max_age_hours: float = 72
    #: calcium intake advice needs a corrected calcium this recent (not high)
    calcium_supplement_max_age_days: float = 30
    #: a life-expectancy estimate older than this is to be estimated again (SYS-AR-START, SYS-ONCO)
    life_expectancy_max_age_days: float = 91
    ctx_max_age_days: float = 90
    #: clock skew tolerated before a clinical time counts as in the future (not current)
    future_tolerance_minutes: float = 10

    def recency(self) -> Recency:
        return Recency(
            creatinine=timedelta(days=self.creatinine_max_age_days),
            weight=timedelta(days=self.weight_max_age_days),
            vitamin_d=timedelta(days=self.vitamin_d_max_age_days),
            calcium=timedelta(hours=self.calcium_max_age_hours),
            calcium_for_supplements=timedelta(days=self.calcium_supplement_max_age_days),
            life_expectancy=timedelta(days=self.life_expectancy_max_age_days),
            ctx=timedelta(days=self.ctx_max_age_days),
            future_tolerance=timedelta(minutes=self.future_tolerance_minutes),
        )

    def as_of(self, now: datetime) -> AsOf:
        # issue 25: the same Recency object while the settings are the same (memo.py keys decisions on it); found by
        # the settings' values, not built again for every event (helper HV: building it cost ~15 µs per event)
        windows = (
            self.creatinine_max_age_days,
            self.weight_max_age_days,
            self.vitamin_d_max_age_days,
            self.calcium_max_age_hours,
            self.calcium_supplement_max_age_days,
            self.life_expectancy_max_age_days,
            self.ctx_max_age_days,
            self.future_tolerance_minutes,
        )
        cached = _BY_WINDOWS.get(windows)
        if cached is None:
            recency = self.recency()
            cached = _RECENCY.setdefault(recency, recency)
            _BY_WINDOWS[windows] = cached
        return AsOf(now=as_parsed_utc(now), tz=ZoneInfo(self.hospital_timezone), recency=cached)


#: issue 25: one Recency object per distinct value (memo.py holds and compares it by identity)
_RECENCY: dict[Recency, Recency] = {}
#: issue 25: that object by the settings' recency windows (the values `recency()` reads, in its order)
_BY_WINDOWS: dict[tuple[float, ...], Recency] = {}
