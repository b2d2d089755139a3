"""Issue 18 (11): every LOINC code lab-normalisation reads carries a valid mod-10 check digit, and a serum CTX coded
with its real LOINC code (41171-0) is normalised, never ignored (LAB-CTX, L225-240)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import AnalyteMap, from_json_lab
from services.lab_normalisation.loinc import CATALOGUE, LOINC, LOINC_ANALYTES, NOT_READ
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW
from shared.clinical.clock import NotAfter

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CODES = ROOT / "services" / "lab_normalisation" / "local_codes.yaml"
SERUM_CTX = "41171-0"  # Collagen crosslinked C-telopeptide [Mass/volume] in Serum or Plasma


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 (Luhn) check digit of the part before the hyphen: from the rightmost digit, double every
    other digit (summing the digits of the products), add the rest; the check digit brings the sum to a multiple
    of 10."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10


def valid_loinc(code: str) -> bool:
    number, _, check = code.partition("-")
    return number.isdigit() and check.isdigit() and len(check) == 1 and loinc_check_digit(number) == int(check)


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("12345-5", True),  # LOINC's own worked example of the algorithm
        ("2160-0", True),
        ("17861-6", True),
        ("41171-0", True),
        ("41171-2", False),  # the CTX code the catalogue held
        ("2160-1", False),
        ("2160", False),
    ],
)
def test_the_check_digit_algorithm(code: str, valid: bool) -> None:
    assert valid_loinc(code) is valid


def _local_loinc_codes() -> list[str]:
    doc = yaml.safe_load(LOCAL_CODES.read_text(encoding="utf-8"))
    keys: list[str] = list((doc.get("local_codes") or {}).keys())
    return [k.split("|", 1)[1] for k in keys if k.split("|", 1)[0] in (LOINC, "LN")]


ALL_CODES = sorted({c.code for c in CATALOGUE} | set(NOT_READ) | set(_local_loinc_codes()))


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_loinc_code_in_the_maps_has_a_valid_check_digit(code: str) -> None:
    assert valid_loinc(code), f"{code}: check digit should be {loinc_check_digit(code.partition('-')[0])}"


def test_serum_ctx_is_mapped_to_its_real_loinc_code() -> None:
    assert LOINC_ANALYTES.get(SERUM_CTX) == "ctx_serum"


def test_a_serum_ctx_coded_with_its_loinc_code_is_normalised() -> None:
    at = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)  # 07:30 in Paris, fasting: interpretable (LAB-CTX)
    raw = {
        "event_id": str(uuid.uuid4()),
        "patient_id": "p1",
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "source": "lab",
        "result_id": "ctx-1",
        "code": {"system": LOINC, "code": SERUM_CTX, "display": "CTX sérique"},
        "value": 0.45,
        "unit": "ng/mL",
        "status": "final",
        "fasting": True,
    }
    batch = from_json_lab(json.dumps(raw).encode(), AnalyteMap.load(LOCAL_CODES), NotAfter(at))
    assert [(x.analyte, x.loinc) for x in batch.labs] == [("ctx_serum", SERUM_CTX)] and batch.unmapped == []
    cfg = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=ZoneInfo("Europe/Paris"))
    _, out = apply_ingested(LabState(), batch, cfg)
    [ctx] = [o for o in out if o.analyte == "ctx_serum"]
    assert ctx.value == pytest.approx(450.0) and ctx.unit == "pg/mL" and ctx.interpretation == "interpretable"
