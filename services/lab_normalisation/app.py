"""Kafka and HTTP adapters of lab-normalisation around the pure rules."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import get_args

import yaml
from fastapi import FastAPI

from contracts.clinical import Analyte, NormalisedLab
from contracts.hospital import Coding, LabResult
from contracts.topics import LAB_RESULTS
from services.lab_normalisation.domain import LabState, apply_result
from services.lab_normalisation.rules import CANONICAL_UNIT, LOINC, LOINC_ANALYTES, LabRejection, to_canonical
from services.lab_normalisation.settings import LabSettings
from shared.http import create_app
from shared.service import Rejected, Service

log = logging.getLogger(__name__)


class AnalyteMap:
    """LOINC plus configured local codes -> analyte."""

    def __init__(self, local: dict[str, Analyte]) -> None:
        self.local = local

    @classmethod
    def load(cls, path: Path) -> AnalyteMap:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        local = doc.get("local_codes") or {}
        allowed = set(get_args(Analyte))
        bad = {k: v for k, v in local.items() if v not in allowed}
        if bad:
            raise ValueError(f"{path}: unknown analytes {sorted(set(bad.values()))}")
        return cls(dict(local))

    def lookup(self, code: Coding) -> Analyte | None:
        if code.system == LOINC:
            return LOINC_ANALYTES.get(code.code)
        return self.local.get(f"{code.system}|{code.code}")


def build(settings: LabSettings) -> tuple[Service, FastAPI]:
    service = Service(settings)
    analytes = AnalyteMap.load(settings.lab_local_codes_file)
    window = timedelta(hours=settings.ca_albumin_window_hours)
    unmapped = service.metrics.messages.labels(service.name, LAB_RESULTS.name, "unmapped_analyte")

    def on_lab_result(state: LabState, event: LabResult) -> tuple[LabState, list[NormalisedLab]]:
        analyte = analytes.lookup(event.code)
        if analyte is None:
            unmapped.inc()
            return state, []  # an analyte no rule uses: not an error
        if event.status == "entered-in-error":
            value, unit = None, CANONICAL_UNIT[analyte]
        else:
            assert event.value is not None
            try:
                value, unit, _ = to_canonical(analyte, event.value, event.unit)
            except LabRejection as exc:
                raise Rejected(str(exc)) from exc
        loinc = event.code.code if event.code.system == LOINC else None
        return apply_result(state, event, analyte, value, unit, event.unit, loinc, window)

    service.patient_aggregate((LAB_RESULTS,), LabState, on_lab_result)
    return service, create_app(service)
