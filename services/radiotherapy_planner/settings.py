from pydantic import Field

from shared.settings import Settings


class RadiotherapySettings(Settings):
    service_name: str = "radiotherapy-planner"
    http_port: int = 8104
    #: RT-REIRR: spinal cord alpha/beta (Gy) for the cord EQD2 of the Sahgal 2019 criteria, which were derived with
    #: 2 Gy (the 0.87 Gy of the conventional-RT paragraph, L1508, is another convention).
    cord_alpha_beta_gy: float = Field(default=2.0, gt=0, le=20)
    #: RT-MSCC: a cord compression seen longer ago than this (days), with no newer imaging, is not decided as a
    #: current emergency (the plan asks to reassess); scoring uses the same default (LESION_EVENT_CURRENT_DAYS).
    compression_current_days: int = Field(default=42, ge=1, le=365)
