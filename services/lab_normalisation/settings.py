from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.lab_normalisation.mllp import MllpSender
from shared.web import signin


class LabSettings(signin.SignInSettings):
    """Issue 23: the entry forms sign in like the clinicians' page, with the same PAGE_* settings (SignInSettings)."""

    service_name: str = "lab-normalisation"
    http_port: int = 8101
    #: LAB-CA-CORR pairing window (hours) between a calcium and an albumin draw.
    ca_albumin_window_hours: float = 48.0
    #: YAML file mapping local lab codes to analytes, and PID-3 identifier rules per sending facility
    #: (see local_codes.yaml).
    lab_local_codes_file: Path = Path(__file__).with_name("local_codes.yaml")
    #: Results kept per patient: within this many days of the newest (each analyte's newest is always kept).
    lab_retention_days: int = 90
    #: issue 25 (README "Retention: lab-normalisation"): results kept whole per analyte (the newest), and stamps of
    #: the versions of the others within LAB_RETENTION_DAYS (a late older version of one changes nothing)
    lab_results_per_analyte: int = 32
    lab_result_stamps: int = 256
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
    # ---- issue 24: MLLP secured (services/lab_normalisation/mllp.py; README "Connecting a lab feed") ----------
    #: TLS with client certificates: this listener's certificate chain and key (PEM), and the CA that issues the
    #: senders' certificates (only certificates it signed are accepted). Set all three for TLS.
    mllp_tls_certfile: Path | None = None
    mllp_tls_keyfile: Path | None = None
    mllp_tls_client_cafile: Path | None = None
    #: certificate identity -> the sending applications/facilities (MSH-3/MSH-4) it may send for. Identity:
    #: "cn:<subject CN>" or "sha256:<certificate fingerprint>". JSON, e.g.
    #: {"cn:lab.chu.example": [{"application": "GLIMS", "facility": "CHU-LYON-BIO"}]}. A certificate without an
    #: entry sends nothing. On plaintext, a "plaintext" entry (if any) applies.
    mllp_allowed_senders: dict[str, list[MllpSender]] = Field(default_factory=dict)
    #: the same mapping in a YAML (or JSON) file, e.g. a mounted Secret; merged with MLLP_ALLOWED_SENDERS
    mllp_allowed_senders_file: Path | None = None
    #: plaintext MLLP: only when asked for here AND only on a loopback MLLP_HOST (the development stack).
    mllp_plaintext: bool = False
    #: a busy (or otherwise unbindable) MLLP port is retried after this long, doubling up to the maximum
    mllp_bind_retry_initial_s: float = 1.0
    mllp_bind_retry_max_s: float = 30.0
    mllp_handshake_timeout_s: float = 10.0
    #: MSH-3 / MSH-4 of the ACKs (HTTP and MLLP): this receiver's application and facility ("^" between HD
    #: components, e.g. "OSTEOCDS^1.2.250.1.999.9^ISO")
    hl7_receiving_application: str = "OSTEOCDS"
    hl7_receiving_facility: str = "OSTEOCDS"
    # ---- issue 25: the admission budget at intake (services/lab_normalisation/admission.py) ------------------
    #: results (OBX, Observations; a JSON event is one) admitted per patient and per source in each window; the
    #: excess is refused visibly (HTTP 429 with Retry-After, HL7 AR, a dead letter on the bus). 0: no budget.
    #: 2,000 results a minute for one patient is far above any real panel (a few dozen results) or resend, and
    #: far below the flood measured (42 x 499 in a minute) that delayed other patients' crisis alerts by 100 s.
    intake_budget_window_s: float = 60.0
    intake_patient_results_per_window: int = 2_000
    #: per source (an HTTP token's subject, an MLLP client certificate): a whole feed, many patients
    intake_source_results_per_window: int = 30_000
