from datetime import timedelta

from pydantic import Field

from services.scoring.rules import Policy
from shared.settings import Settings


class ScoringSettings(Settings):
    service_name: str = "scoring"
    http_port: int = 8102
    #: A crisis corrected calcium is current while it is the newest value and at most this old (LAB-CA-CRISIS).
    calcium_current_hours: float = Field(default=72, gt=0)
    #: An untreated fracture or cord compression stays current this long after the newest imaging showing it.
    lesion_event_current_days: float = Field(default=42, gt=0)
    #: A life-expectancy estimate older than this is to be estimated again (MIRELS-HIGH, SURG-LE).
    life_expectancy_valid_days: float = Field(default=91, gt=0)
    #: A lesion's pain older than this is to be reassessed before it scores Mirels or SINS.
    lesion_pain_valid_days: float = Field(default=30, gt=0)
    #: CLASS-OLIGO: primary control and extra-osseous disease older than this are to be restaged.
    staging_valid_days: float = Field(default=91, gt=0)
    #: Clock skew allowed: a fact dated later than now + this is not current (ignored by the decisions, and said).
    future_tolerance_minutes: float = Field(default=15, ge=0)

    def policy(self) -> Policy:
        return Policy(
            calcium_current=timedelta(hours=self.calcium_current_hours),
            lesion_event_current=timedelta(days=self.lesion_event_current_days),
            life_expectancy_valid=timedelta(days=self.life_expectancy_valid_days),
            lesion_pain_valid=timedelta(days=self.lesion_pain_valid_days),
            staging_valid=timedelta(days=self.staging_valid_days),
            future_tolerance=timedelta(minutes=self.future_tolerance_minutes),
        )
