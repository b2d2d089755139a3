from __future__ import annotations

from pathlib import Path

from shared.settings import Settings


class LabSettings(Settings):
    service_name: str = "lab-normalisation"
    http_port: int = 8101
    #: LAB-CA-CORR pairing window (hours) between a calcium and an albumin draw.
    ca_albumin_window_hours: float = 48.0
    #: YAML file mapping local lab codes to analytes, and PID-3 identifier rules per sending facility
    #: (see local_codes.yaml).
    lab_local_codes_file: Path = Path(__file__).with_name("local_codes.yaml")
    #: Results kept per patient: within this many days of the newest (each analyte's newest is always kept).
    lab_retention_days: int = 90
    #: Results (HL7 OBX, FHIR Observations) per message: a message with more is refused whole before parsing
    #: (HL7 AR / 422, or a dead letter), so one message cannot hold the parser, flood one patient's state and
    #: put everyone downstream behind it.
    max_results_per_message: int = 500
    #: LAB-CRCL: a weight measured further than this from the creatinine is "to measure again" (issue 9.9).
    #: 30 days: zoledronic acid is dosed from the clearance each month (Tableau 2, L1160-1183).
    weight_max_age_days: float = 30.0
    #: MLLP listener for HL7 v2 (same checks and path as POST /hl7v2); 0 turns it off.
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
