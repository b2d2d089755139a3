"""One cohort patient's history as a stream (devstack/cohort.py, issue 25): onboarding (patient record, care-pathway
steps, a bone biopsy at diagnosis, the first lesions), lab draws in the units of the patient's lab (with an
occasional crisis calcium, LAB-CA-CRISIS) and their corrections, weight updates, imaging studies whose lesions grow,
collapse, fracture or compress the cord (the emergency that follows), and clinical assessments; each process
schedules the next, and the messages come out in publication order. The treatments: devstack/cohort_care.py.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from contracts.care import BoneBiopsy, CareEvent, PathwayStep
from contracts.hospital import (
    ClinicalAssessment,
    Coding,
    ExtraOsseousMetastases,
    ImagingFinding,
    LabResult,
    LesionPain,
    Pain,
    PatientRecord,
)
from devstack.cohort_care import _Care
from devstack.cohort_model import (
    _LABS,
    _LONG_BONES,
    _PATHWAY,
    _SITES,
    _SPINE_LEVELS,
    DAY,
    HOUR,
    LOINC,
    MAX_LESIONS,
    Generated,
    _Lesion,
)


class _Patient(_Care):
    """One patient's history, generated lazily in publication order."""

    # ---- the stream ---------------------------------------------------------------------------------------------
    def messages(self) -> Iterator[Generated]:
        self.schedule(self.start, self.onboard)
        while self._todo:
            step = heapq.heappop(self._todo)
            # everything emitted from now on is recorded at or after `step.at`: what is recorded before is final
            while self._out and self._out[0][0] < step.at:
                yield heapq.heappop(self._out)[2]
            step.step(step.at)
        while self._out:
            yield heapq.heappop(self._out)[2]

    # ---- processes ----------------------------------------------------------------------------------------------
    def onboard(self, at: datetime) -> None:
        r = self.rng
        profile = {"EGFR": "L858R" if self.egfr else "negative", "ALK": "negative"}
        if self.histology == "adenocarcinoma":
            profile["PD-L1"] = r.choice(["<1%", "1-49%", "50%"])
        self.emit(
            PatientRecord(
                **self.env(at, at + 2 * HOUR, "dpi-bus"),
                birth_date=self.birth,
                sex=self.sex,
                weight_kg=round(self.weight, 1),
                weight_measured_at=self.day(at),
                histology=self.histology,
                molecular_profile=profile,
            )
        )
        for item in _PATHWAY[: r.randint(2, len(_PATHWAY))]:
            status = r.choices(["done", "declined", "not_applicable"], [8, 1, 1])[0]
            when = at + r.uniform(0, 3) * DAY
            self.emit(
                CareEvent(
                    **self.env(when, when + HOUR, "dpi-bus"),
                    event=PathwayStep(item=item, status=status, on=self.day(when)),
                )
            )
        if r.random() < 0.3:  # a bone biopsy at diagnosis, reported a week later
            when = at + r.uniform(1, 4) * DAY
            reported = when + r.uniform(5, 10) * DAY
            self.emit(
                CareEvent(
                    **self.env(reported, reported + HOUR, "pathology-bus"),
                    event=BoneBiopsy(
                        biopsy_id=f"bx-{self.id}-1",
                        status="reported",
                        on=self.day(when),
                        context="diagnosis",
                        histology=self.histology,
                        decalcification="edta",
                        molecular_results=profile,
                    ),
                )
            )
        for _ in range(r.choices([1, 2, 3, 4, 6], [3, 3, 2, 1, 1])[0]):
            self.new_lesion()
        self.schedule(at + 0.5 * DAY, self.imaging)
        self.schedule(at + 1 * DAY, self.assessment)
        self.schedule(at, self.labs)
        self.schedule(at + r.uniform(3, 10) * DAY, self.dental)
        self.schedule(at + r.uniform(5, 15) * DAY, self.systemic)
        self.schedule(at + self.every(30, 90), self.weight_update)

    def new_lesion(self, at_study: bool = False) -> _Lesion:
        r = self.rng
        site = r.choices([s for s, _ in _SITES], [w for _, w in _SITES])[0]
        level = r.choice(_SPINE_LEVELS) if site == "spine" else None
        lesion = _Lesion(
            lesion_id=f"{site}-{level or len(self.lesions) + 1}-{len(self.lesions) + 1}",
            site=site,
            level=level,
            kind=r.choices(["lytic", "mixed", "blastic"], [6, 3, 1])[0],
            size=round(r.uniform(0.8, 3.5), 1),
            cortical=r.uniform(0.05, 0.4),
            painful=r.random() < 0.4,
        )
        self.lesions[lesion.lesion_id] = lesion
        return lesion

    def labs(self, at: datetime) -> None:
        """One draw: calcium, albumin and creatinine; 25-OH vitamin D about every 3 months."""
        r = self.rng
        self.draws += 1
        when = at.replace(hour=7, minute=r.randrange(0, 60, 5)) if at.hour < 7 else at
        units = _LABS[self.lab]
        self.albumin = min(46.0, max(22.0, self.albumin + r.gauss(-0.15, 1.2)))
        self.creatinine = min(400.0, max(40.0, self.creatinine * math.exp(r.gauss(0.003, 0.06))))
        corrected = r.gauss(2.45 if self.hypercalcaemic else 2.35, 0.09)
        if r.random() < (0.02 if self.hypercalcaemic else 0.002):
            corrected = r.uniform(3.55, 3.95)  # LAB-CA-CRISIS (> 3.5 mmol/L corrected)
        elif self.hypercalcaemic and r.random() < 0.1:
            corrected = r.uniform(2.65, 3.3)
        total = corrected - 0.02 * (40 - self.albumin)
        values = {"calcium": total, "albumin": self.albumin, "creatinine": self.creatinine}
        if self.draws % max(1, round(6 * self.density)) == 1:
            self.vitamin_d = min(80.0, max(4.0, self.vitamin_d + r.gauss(2 if self.antiresorptive else 0, 4)))
            values["vitamin_d"] = self.vitamin_d
        recorded = when + r.uniform(1, 8) * HOUR
        for analyte, canonical in values.items():
            u = units[analyte]
            result = LabResult(
                **self.env(when, recorded + r.uniform(0, 5) * timedelta(minutes=1), "lab-bus"),
                result_id=f"LAB-{self.id}-{self.draws}-{analyte}",
                code=Coding(system=LOINC, code=u.code, display=u.display),
                value=round(canonical * u.factor, u.digits),
                unit=u.unit,
            )
            self.emit(result)
            if r.random() < 0.015:
                self.correct_lab(result, canonical * u.factor, u.digits)
        self.schedule(at + self.every(7, 28), self.labs)

    def correct_lab(self, result: LabResult, value: float, digits: int) -> None:
        """A corrected value (or, one time in three, a withdrawal) of a result, a few hours to days later."""
        r = self.rng
        later = result.recorded_at + r.uniform(2, 96) * HOUR
        if r.random() < 1 / 3:
            changes: dict[str, Any] = {"status": "entered-in-error", "value": None}
        else:
            changes = {"status": "corrected", "value": round(value * r.uniform(0.9, 1.1), digits)}
        env = self.env(result.occurred_at, later, "lab-bus")
        fields = result.model_dump(exclude={"event_id", "occurred_at", "recorded_at", "source", "patient_id"})
        self.emit(LabResult(**env, **(fields | changes)))

    def weight_update(self, at: datetime) -> None:
        self.weight = max(35.0, self.weight + self.rng.gauss(-0.4, 1.2))
        self.emit(
            PatientRecord(
                **self.env(at, at + HOUR, "dpi-bus"), weight_kg=round(self.weight, 1), weight_measured_at=self.day(at)
            )
        )
        self.schedule(at + self.every(30, 90), self.weight_update)

    def imaging(self, at: datetime) -> None:
        """One study: every lesion still seen, each evolving; sometimes a new focus, a fracture, a compression."""
        r = self.rng
        modality = r.choices(["ct", "mri", "bone_scan", "fdg_pet"], [5, 2, 1, 2])[0]
        reported = at + r.uniform(4, 48) * HOUR
        progressing = self.course is not None and at >= self.course.progression
        active = sum(not x.resolved for x in self.lesions.values())
        if (r.random() < (0.3 if progressing else 0.08) and active < MAX_LESIONS) or not active:
            self.new_lesion()
        urgent: list[_Lesion] = []
        for lesion in list(self.lesions.values()):
            if lesion.resolved:
                continue
            grow = r.gauss(0.15 if progressing else -0.02, 0.12)
            lesion.size = round(min(12.0, max(0.3, lesion.size * (1 + grow))), 1)
            lesion.cortical = min(0.95, max(0.0, lesion.cortical + grow / 3))
            lesion.painful = lesion.painful or r.random() < 0.08
            if lesion.site == "spine":
                if grow > 0.1 and r.random() < 0.2:
                    lesion.collapse = "lt_50" if lesion.collapse == "none" else "gt_50"
                lesion.epidural = lesion.epidural or (grow > 0.05 and r.random() < 0.15)
                if lesion.epidural and not lesion.compression and r.random() < 0.08:
                    lesion.compression = True
                    urgent.append(lesion)
            elif lesion.site in _LONG_BONES and not lesion.fracture and lesion.cortical > 0.5 and r.random() < 0.1:
                lesion.fracture = True
                urgent.append(lesion)
            if lesion.size < 0.5 and r.random() < 0.3:
                lesion.resolved = True
            finding = self.finding(lesion, modality, at, reported + r.uniform(0, 10) * timedelta(minutes=1))
            if r.random() < 0.01:  # an amended report (or, one time in three, a finding entered in error)
                later = finding.recorded_at + r.uniform(1, 72) * HOUR
                error = r.random() < 1 / 3
                self.emit(
                    finding.model_copy(
                        update={
                            **self.env(finding.occurred_at, later, "ris-bus"),
                            "record_status": "entered-in-error" if error else "amended",
                            "corrects": finding.event_id,
                            "size_cm": finding.size_cm if error else round(lesion.size * r.uniform(0.9, 1.1), 1),
                        }
                    )
                )
        for lesion in urgent:
            self.emergency(lesion, reported)
        self.schedule(at + self.every(60, 120), self.imaging)

    def finding(self, lesion: _Lesion, modality: str, at: datetime, recorded: datetime) -> ImagingFinding:
        r = self.rng
        spine = lesion.site == "spine"
        long_bone = lesion.site in _LONG_BONES
        finding = ImagingFinding(
            **self.env(at, recorded, "ris-bus"),
            lesion_id=lesion.lesion_id,
            skeletal_site=lesion.site,
            vertebral_level=lesion.level,
            lesion_type=lesion.kind,
            cortical_involvement_fraction=round(lesion.cortical, 2) if long_bone else None,
            axial_cortical_osteolysis_pct=round(lesion.cortical * 100, 0) if long_bone else None,
            circumferential_cortical_osteolysis_pct=round(lesion.cortical * 70, 0) if long_bone else None,
            vertebral_collapse=lesion.collapse if spine else None,
            alignment=("de_novo_deformity" if lesion.collapse == "gt_50" else "normal") if spine else None,
            posterolateral_involvement=(
                r.choice(["none", "unilateral", "bilateral"])
                if spine and lesion.size > 2
                else "none"
                if spine
                else None
            ),
            epidural_extension=lesion.epidural if spine else None,
            cord_compression=lesion.compression if spine else None,
            pathological_fracture=lesion.fracture,
            size_cm=lesion.size,
            modality=modality,
            new_focus=len(self.lesions) > 1 and lesion.size < 1.0 and not lesion.irradiated,
            status="resolved" if lesion.resolved else "confirmed" if modality in ("ct", "mri") else None,
            canal_narrowing_pct=round(min(90.0, lesion.size * 8), 0) if spine and lesion.epidural else None,
            tumour_cord_distance_mm=(0.0 if lesion.compression else round(r.uniform(2, 12), 1)) if spine else None,
            vertebral_body_involvement_fraction=round(min(1.0, lesion.size / 5), 2) if spine else None,
        )
        self.emit(finding)
        return finding

    def emergency(self, lesion: _Lesion, at: datetime) -> None:
        """A cord compression or a pathological fracture: an assessment, radiotherapy within days, sometimes
        surgery first."""
        r = self.rng
        self.assessment(at + HOUR, neurological_deficit=lesion.compression, reschedule=False)
        if r.random() < (0.3 if lesion.compression else 0.6):
            when = at + r.uniform(1, 3) * DAY
            procedure = "decompression" if lesion.compression else "fracture_fixation"
            self.schedule(when, lambda t: self.surgery(t, lesion, procedure))
        self.schedule(at + r.uniform(1, 4) * DAY, lambda t: self.radiotherapy(t, lesion, "cord_compression"))

    def assessment(self, at: datetime, neurological_deficit: bool = False, reschedule: bool = True) -> None:
        r = self.rng
        progressing = self.course is not None and at >= self.course.progression
        seen = [x for x in self.lesions.values() if not x.resolved]
        ecog = min(4, max(0, round(r.gauss(1.6 if progressing else 1.0, 0.7))))
        lesion_pain = [
            LesionPain(
                lesion_id=x.lesion_id,
                character=r.choice(["mechanical", "non_mechanical"]),
                intensity=r.choice(["mild", "moderate", "functional"]),
                nrs=r.randint(2, 8),
            )
            for x in seen
            if x.painful and not x.irradiated
        ][:10]
        count = r.choice([0, 0, 1, 2, 3]) if not progressing else r.randint(1, 6)
        sites = sorted(set(r.sample(["adrenal", "brain", "liver", "lung", "lymph_nodes"], min(count, 3))))
        message = ClinicalAssessment(
            **self.env(at, at + r.uniform(0.5, 6) * HOUR, "dpi-bus"),
            ecog=ecog,
            pain=Pain(
                character="mechanical" if lesion_pain else "none",
                intensity="moderate" if lesion_pain else "none",
                nrs=max((p.nrs or 0 for p in lesion_pain), default=0),
            ),
            lesion_pain=lesion_pain,
            extra_osseous_metastases=ExtraOsseousMetastases(count=count, sites=sites, stable=not progressing),
            neurological_deficit=neurological_deficit,
            life_expectancy_months=round(r.uniform(2, 9) if progressing else r.uniform(6, 30), 0),
            primary_controlled=not progressing and r.random() < 0.6,
            oncological_response="progression" if progressing else r.choice(["partial", "stable", "good"]),
            frail=ecog >= 3,
            hard_to_move=ecog >= 3 and r.random() < 0.5,
        )
        self.emit(message)
        if r.random() < 0.01:  # an assessment amended (e.g. the ECOG mistyped)
            later = message.recorded_at + r.uniform(1, 48) * HOUR
            self.emit(
                message.model_copy(
                    update={
                        **self.env(message.occurred_at, later, "dpi-bus"),
                        "record_status": "amended",
                        "corrects": message.event_id,
                        "ecog": min(4, ecog + 1),
                    }
                )
            )
        if reschedule:
            self.schedule(at + self.every(28, 56), self.assessment)
        for lesion in seen:  # a painful, unirradiated lesion: palliative radiotherapy (RT-FRACT-PALL)
            if lesion.painful and not lesion.irradiated and r.random() < 0.3:
                self.schedule(
                    at + r.uniform(3, 14) * DAY, functools.partial(self.radiotherapy, lesion=lesion, intent="pain")
                )
                break
