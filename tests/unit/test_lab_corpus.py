"""Issue 12: the corpus of real-shaped messages (tests/corpus/manifest.yaml, one per problem, provenance noted)
parsed as HTTP and MLLP parse them, with the expected ACK / HTTP status and normalised values; BOM, line
endings and trailing blanks never change a result; result identity, control-ID reuse, censored values and
PID-3 rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.clinical import NormalisedLab
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.hl7v2 import patient_of_hl7
from services.lab_normalisation.ingest import (
    AnalyteMap,
    IdRule,
    Ingested,
    Verdict,
    fhir_verdict,
    from_hl7,
    hl7_verdict,
)
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
MANIFEST: dict[str, list[dict[str, Any]]] = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
ANALYTES = AnalyteMap.load(ROOT / "services/lab_normalisation/local_codes.yaml")
PARIS = ZoneInfo("Europe/Paris")
RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GUARD = NotAfter(RECEIVED)
CFG = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=PARIS)


def verdict(case: dict[str, Any], raw: bytes | None = None) -> Verdict:
    raw = raw if raw is not None else (CORPUS / case["file"]).read_bytes()
    if case["file"].endswith(".hl7"):
        return hl7_verdict(raw, ANALYTES, PARIS, GUARD)
    return fhir_verdict(raw, ANALYTES, GUARD, PARIS)


def check_case(case: dict[str, Any]) -> None:
    v = verdict(case)
    if "ack" in case:
        assert v.code == case["ack"], v.reasons
    if "http" in case:
        assert v.status == case["http"], v.reasons
    if "reasons_contain" in case:
        assert any(case["reasons_contain"] in r for r in v.reasons)
    if "patient" in case:
        assert v.batch is not None and v.batch.patient_id == case["patient"]
    if "labs" in case:
        assert v.batch is not None
        got = v.batch.labs
        assert [x.analyte for x in got] == [e["analyte"] for e in case["labs"]]
        for x, e in zip(got, case["labs"], strict=True):
            assert x.value == pytest.approx(e["value"], rel=1e-5) and x.unit == e["unit"]
            assert x.result.comparator == e.get("comparator")
            assert x.result.occurred_at_precision == e.get("precision", "time")
            if "occurred_at" in e:
                assert x.result.occurred_at == datetime.fromisoformat(e["occurred_at"])
            if "result_id" in e:
                assert x.result.result_id == e["result_id"]
    if "unmapped" in case:
        assert v.batch is not None and v.batch.unmapped == case["unmapped"]
    if case.get("recorded_at_is_receipt"):
        assert v.batch is not None and all(x.result.recorded_at == RECEIVED for x in v.batch.labs)


@pytest.mark.parametrize("case", MANIFEST["hl7"], ids=lambda c: c["file"])
def test_hl7_corpus(case: dict[str, Any]) -> None:
    check_case(case)


@pytest.mark.parametrize("case", MANIFEST["fhir"], ids=lambda c: c["file"])
def test_fhir_corpus(case: dict[str, Any]) -> None:
    check_case(case)


def test_every_corpus_file_is_in_the_manifest_with_its_provenance() -> None:
    listed = {c["file"] for cases in MANIFEST.values() for c in cases}
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.is_file()}
    assert listed == on_disk
    assert all(c.get("provenance") and c.get("problem") for cases in MANIFEST.values() for c in cases)


# ---- property: a BOM, CR / CRLF / LF segment endings, trailing blanks never change the result ---------------
HL7_FILES = [c["file"] for c in MANIFEST["hl7"]]


def _signature(v: Verdict) -> tuple[object, ...]:
    b = v.batch
    labs = [] if b is None else [(x.result.event_id, x.result.result_id, x.value, x.result.occurred_at) for x in b.labs]
    return v.code, v.status, v.reasons, b and b.key, b and b.patient_id, labs, b and b.event_ids()


@settings(max_examples=150, deadline=None)
@given(
    file=st.sampled_from(HL7_FILES),
    bom=st.booleans(),
    ending=st.sampled_from(["\r", "\r\n", "\n"]),
    blanks=st.lists(st.sampled_from(["", " ", "  ", "\t", " \t "]), min_size=12, max_size=12),
    final=st.sampled_from(["", "\r", "\r\n", "\n", "\n\n"]),
)
def test_bom_line_endings_and_trailing_blanks_never_change_the_result(
    file: str, bom: bool, ending: str, blanks: list[str], final: str
) -> None:
    case = next(c for c in MANIFEST["hl7"] if c["file"] == file)
    original = (CORPUS / file).read_bytes()
    segments = [s for s in original.decode("utf-8-sig").split("\r") if s]
    text = ending.join(seg + blanks[i % len(blanks)] for i, seg in enumerate(segments)) + final
    variant = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    assert _signature(verdict(case, variant)) == _signature(verdict(case))


# ---- identity, reuse, censored values, PID-3 -----------------------------------------------------------------
def _batch(file: str) -> Ingested:
    return from_hl7((CORPUS / file).read_bytes(), ANALYTES, PARIS, GUARD)


def test_a_report_reordering_its_obx_supersedes_instead_of_duplicating() -> None:
    state, _ = apply_ingested(LabState(), _batch("hl7/report_first.hl7"), CFG)
    state, out = apply_ingested(state, _batch("hl7/report_corrected_reordered.hl7"), CFG)
    assert sorted(state.results) == ["hl7:FIL-4001|1751-7|", "hl7:FIL-4001|2000-8|"]
    assert (
        state.results["hl7:FIL-4001|1751-7|"].value == 34 and state.results["hl7:FIL-4001|1751-7|"].status == "amended"
    )
    [corrected] = [o for o in out if o.analyte == "corrected_calcium"]  # re-derived from the corrected albumin
    assert corrected.result_id == "corrected:hl7:FIL-4001|2000-8|" and corrected.value == pytest.approx(2.95 + 6 / 40)


def test_a_reused_control_id_with_other_content_is_another_delivery() -> None:
    a, b = _batch("hl7/control_id_reuse_a.hl7"), _batch("hl7/control_id_reuse_b.hl7")
    assert a.key != b.key and not set(a.event_ids()) & set(b.event_ids())
    assert a.key.split("|")[:3] == b.key.split("|")[:3]  # same sender and MSH-10


def test_a_second_obx_with_the_same_identity_is_refused_not_merged() -> None:
    raw = (CORPUS / "hl7/report_first.hl7").read_bytes() + b"OBX|3|NM|2000-8^Calcium^LN||3.10|mmol/L||H|||F\r"
    b = from_hl7(raw, ANALYTES, PARIS, GUARD)
    # which of 2.95 and 3.10 holds is unknown: neither is used (never a guessed value), both are named
    assert [x.value for x in b.labs if x.analyte == "total_calcium"] == []
    assert any(r.startswith("OBX 3: a second OBX with the same order, code and OBX-4") for r in b.rejections)
    assert any(r.startswith("OBX ") and "OBX 3 has the same order" in r for r in b.rejections)


def _normalised(batch: Ingested) -> list[NormalisedLab]:
    return apply_ingested(LabState(), batch, CFG)[1]


def test_censored_values_are_handled_identically_in_hl7_and_fhir_and_never_used_as_exact() -> None:
    hl7_out = _normalised(_batch("hl7/censored_sn.hl7"))
    fhir_batch = fhir_verdict((CORPUS / "fhir/censored_quantity.json").read_bytes(), ANALYTES, GUARD, PARIS).batch
    assert fhir_batch is not None
    fhir_out = _normalised(fhir_batch)

    def view(out: list[NormalisedLab]) -> list[tuple[object, ...]]:
        return [(o.analyte, o.value, o.unit, o.comparator, o.interpretation) for o in out if o.derived_from == []]

    assert view(hl7_out) == view(fhir_out)
    vitd = next(o for o in hl7_out if o.analyte == "vitamin_d_25oh")
    assert vitd.comparator == "<" and vitd.interpretation == "deficiency"  # < 8 ng/mL: below 10 whatever it is


def test_LAB_VITD_a_censored_value_whose_bound_does_not_settle_the_class_is_not_classed() -> None:
    raw = (CORPUS / "hl7/censored_sn.hl7").read_bytes().replace(b"<^8|ng/mL", b"<^20|ng/mL")
    [vitd] = [o for o in _normalised(from_hl7(raw, ANALYTES, PARIS, GUARD)) if o.analyte == "vitamin_d_25oh"]
    assert vitd.interpretation is None and any("censurée" in n for n in vitd.notes)


def test_LAB_CRCL_a_censored_creatinine_gives_a_bounded_clearance_and_LAB_CA_CORR_a_bounded_calcium() -> None:
    state, _ = apply_ingested(LabState(), _batch("hl7/censored_sn.hl7"), CFG)  # PID gives age and sex
    raw = (CORPUS / "hl7/censored_sn.hl7").read_bytes()
    weighed = raw.replace(b"PID|1||C10-CENS", b"PID|1||C10-CENS").replace(
        b"OBX|2|", b"OBX|3|NM|29463-7^Body weight^LN||70|kg|||||F\rOBX|2|"
    )
    _, out = apply_ingested(state, from_hl7(weighed, ANALYTES, PARIS, GUARD), CFG)
    [crcl] = [o for o in out if o.analyte == "creatinine_clearance"]
    assert crcl.comparator == "<" and crcl.value is not None  # creatinine > x: clearance < y
    high = raw.replace(
        b"1989-3^25-Hydroxyvitamin D3+25-Hydroxyvitamin D2 [Mass/volume] in Serum or Plasma", b"2000-8^Ca"
    )
    high = high.replace(b"<^8|ng/mL", b">^3.6|mmol/L").replace(
        b"OBX|2|", b"OBX|3|NM|1751-7^Alb^LN||40|g/L|||||F\rOBX|2|"
    )
    [ca] = [o for o in _normalised(from_hl7(high, ANALYTES, PARIS, GUARD)) if o.analyte == "corrected_calcium"]
    assert ca.comparator == ">" and ca.value == pytest.approx(3.6)  # above 3.5 whatever it is: a crisis bound


def test_pid3_rules_per_sending_facility_and_never_a_national_number() -> None:
    raw = (CORPUS / "hl7/pid3_ssn_first.hl7").read_bytes()
    strict = AnalyteMap(ANALYTES.local, {"default": (IdRule("PI"),), "CHU-LYON-BIO": (IdRule("PI", "OTHER-HOSP"),)})
    with pytest.raises(Rejected, match="no identifier of an accepted type"):
        from_hl7(raw, strict, PARIS, GUARD)
    by_authority = AnalyteMap(ANALYTES.local, {"default": (), "CHU-LYON-BIO": (IdRule("PI", "CHU-LYON"),)})
    assert from_hl7(raw, by_authority, PARIS, GUARD).patient_id == "C06-PSEUDO-42"
    untyped_ssn = raw.replace(b"C06-PSEUDO-42^^^CHU-LYON^PI", b"123-45-6789^^^CHU-LYON^PI")
    with pytest.raises(Rejected, match="not a pseudonymous patient ID"):
        from_hl7(untyped_ssn.replace(b"123-45-6789^^^SSA^SS~", b""), ANALYTES, PARIS, GUARD)


def test_pid3_configuration_refuses_a_social_security_type(tmp_path: Path) -> None:
    cfg = tmp_path / "codes.yaml"
    cfg.write_text("local_codes: {}\npatient_identifiers:\n  default: [{type: SS}]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never a key"):
        AnalyteMap.load(cfg)
    cfg.write_text("patient_identifiers:\n  LAB-X: [{type: PI, authority: LAB-X}]\n", encoding="utf-8")
    loaded = AnalyteMap.load(cfg)
    assert loaded.id_rules_for("LAB-X") == (IdRule("PI", "LAB-X"),) and loaded.id_rules_for("other") == ()


def test_docs_loinc_table_is_generated_from_the_catalogue() -> None:
    from services.lab_normalisation.loinc import CATALOGUE, markdown

    assert (ROOT / "docs" / "loinc.md").read_text(encoding="utf-8") == markdown()
    by_analyte = {c.analyte for c in CATALOGUE}
    # several codes (specimen, method, mass or substance) per analyte the rules read most
    for analyte in ("total_calcium", "albumin", "creatinine", "vitamin_d_25oh", "platelets"):
        assert analyte in by_analyte and sum(c.analyte == analyte for c in CATALOGUE) >= 2


def test_bus_ignores_a_valid_fhir_message_with_nothing_used_as_http_and_hl7_do() -> None:
    """A patient-less valid Bundle on hospital.fhir-r4.v1 is ignored under the record's key (not dead-lettered);
    without a usable key it is refused with the reason."""
    from aiokafka.structs import ConsumerRecord

    from services.lab_normalisation.app import _fhir_record

    raw = (CORPUS / "fhir/nothing_used_no_patient.json").read_bytes()

    def record(key: bytes | None) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord(
            "hospital.fhir-r4.v1", 0, 0, int(RECEIVED.timestamp() * 1000), 0, key, raw, None, 0, 0, []
        )

    ignored = _fhir_record(record(b"C19-KEY"), ANALYTES, GUARD, PARIS)
    assert ignored.patient_id == "C19-KEY" and not ignored.used() and "nothing used" in ignored.ignored[0]
    with pytest.raises(Rejected, match="nothing used"):
        _fhir_record(record(None), ANALYTES, GUARD, PARIS)


@pytest.mark.parametrize(
    ("weight", "comparator", "missing"),
    [
        (b"=^70", "<", False),  # creatinine > 15 mg/dL, exact weight: clearance below a bound
        (b"<^150", "<", False),  # a lighter patient and a higher creatinine both lower the clearance: still a bound
        (b">^150", None, True),  # heavier but more creatinine: no bound at all, never an exact-looking value
    ],
)
def test_LAB_CRCL_a_censored_weight_bounds_the_clearance_or_leaves_it_uncomputable(
    weight: bytes, comparator: str | None, missing: bool
) -> None:
    [crcl] = [
        o
        for o in _normalised(from_hl7(_raw_weighed(weight), ANALYTES, PARIS, GUARD))
        if o.analyte == "creatinine_clearance"
    ]
    assert crcl.comparator == comparator
    assert (crcl.value is None) is missing
    if missing:
        assert any("censored" in m for m in crcl.missing)
    weights = [x.comparator for x in crcl.derived_from if x.analyte == "body_weight"]
    assert weights == ([] if missing else [{b"=^70": None, b"<^150": "<"}[weight]])
    [c] = [x for x in crcl.derived_from if x.analyte == "creatinine"]
    assert c.comparator == ">"  # the source reference keeps the comparator (issue 12)


def _raw_weighed(weight: bytes) -> bytes:
    raw = (CORPUS / "hl7/censored_sn.hl7").read_bytes()
    return raw.replace(b"OBX|2|", b"OBX|3|SN|29463-7^Body weight^LN||" + weight + b"|kg|||||F\rOBX|2|")


@pytest.mark.parametrize("case", MANIFEST["hl7"], ids=lambda c: c["file"])
def test_the_patient_read_from_msh_and_pid_alone_is_the_parsers(case: dict[str, Any]) -> None:
    """Issue 25: the intake refuses a flooding patient's message from `patient_of_hl7` (MSH and PID alone, before
    the results are parsed): for every corpus message the parser accepts, the same patient key."""
    raw = (CORPUS / case["file"]).read_bytes()
    try:
        batch = from_hl7(raw, ANALYTES, PARIS, GUARD)
    except Rejected:
        return  # refused by the parser: the intake's full parse says why (a spent budget answers 429 first)
    assert patient_of_hl7(raw, ANALYTES) == batch.patient_id
