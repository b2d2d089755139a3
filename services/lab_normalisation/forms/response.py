"""A QuestionnaireResponse to one of the clinician forms (forms/) read into the contract messages the bus
would send (issue 23). Checked against the form's description (linkIds, answer types, options, bounds, required
items, enableWhen) and then against the contracts; every refusal is a French sentence naming the item and its linkId.
`source` names the clinician (the token's subject, never the body) and the form. Pure, no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.base import Message, derived_id
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from services.lab_normalisation.common import EARLIEST_YEAR
from services.lab_normalisation.forms import FORMS
from services.lab_normalisation.forms.choices import CORRECTED
from services.lab_normalisation.forms.model import BASE, VERSION, Form, Group, Question, option_system
from shared.clinical.irradiation import spinal_levels

_PATIENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: review HAZ-23-R03: a date "today" somewhere on Earth (UTC+14) is not in the future
_LATEST_OFFSET = timedelta(hours=14)
#: the problems one refusal lists (the rest are counted)
PROBLEMS_SHOWN = 50
_VALUE = {
    "choice": ("valueCoding",),
    "decimal": ("valueDecimal", "valueInteger"),
    "integer": ("valueInteger",),
    "boolean": ("valueBoolean",),
    "date": ("valueDate",),
    "dateTime": ("valueDateTime",),
    "string": ("valueString",),
}
#: what a contract's own check says, in French (model validators)
_CONTRACT_FR = {
    "vertebral_level is required for a spinal lesion": "le niveau vertébral est obligatoire pour une lésion du rachis",
    "corrects is required when record_status is entered-in-error": "une saisie erronée doit nommer la saisie qu'elle "
    "retire (identifiant de la saisie corrigée)",
    "corrects is required when record_status is amended or entered-in-error": "une correction doit nommer la saisie "
    "qu'elle corrige (identifiant de la saisie corrigée)",
    "a proposed scheme needs both total_dose_gy and fractions": "un schéma proposé demande la dose totale et le "
    "nombre de fractions",
    "sites must be listed when count > 0, and empty when count is 0": "les organes atteints se listent quand le "
    "nombre est supérieur à 0, et seulement alors",
    "more distinct sites than metastases": "plus d'organes atteints que de métastases",
}


class Refused(Exception):
    """The response cannot be taken: each problem is a French sentence naming the item (422 OperationOutcome)."""

    def __init__(self, problems: list[str]) -> None:
        if len(problems) > PROBLEMS_SHOWN:  # review HAZ-23-R05: 1 MB of unknown items is not a 1 MB answer
            problems = [*problems[:PROBLEMS_SHOWN], f"… et {len(problems) - PROBLEMS_SHOWN} autres problèmes"]
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Entry:
    form: Form
    patient_id: str
    messages: list[Message]


def _named(q: Question) -> str:
    return f"« {q.text} » ({q.link_id})"


def form_of(canonical: object) -> Form:
    """The form a `questionnaire` canonical names: its URL, `Questionnaire/<id>`, either with `|version`."""
    if not isinstance(canonical, str) or not canonical:
        raise Refused(["questionnaire : la réponse doit nommer son questionnaire (canonical)"])
    ref, _, version = canonical.partition("|")
    ref = ref.removeprefix(f"{BASE}/")
    form = FORMS.get(ref.removeprefix("Questionnaire/")) if ref.startswith("Questionnaire/") else None
    if form is None:
        raise Refused([f"questionnaire : « {canonical[:120]} » n'est pas un formulaire de ce service"])
    if version and version != VERSION:  # review HAZ-23-R04: answers to a version this service does not serve
        raise Refused([f"questionnaire : version « {version[:20]} » inconnue (version servie : {VERSION})"])
    return form


def _patient(subject: object) -> str:
    ref = subject.get("reference") if isinstance(subject, dict) else None
    pid = ref.removeprefix("Patient/") if isinstance(ref, str) and ref.startswith("Patient/") else None
    if pid is None or not _PATIENT.match(pid):
        raise Refused(["subject : la réponse doit désigner le patient (Patient/<identifiant pseudonyme>)"])
    ident = subject.get("identifier") if isinstance(subject, dict) else None
    if ident is not None and (not isinstance(ident, dict) or ident.get("value") != pid):  # review HAZ-23-R04
        raise Refused(["subject : la référence et l'identifiant désignent deux patients (ou un identifiant illisible)"])
    return pid


def _instant(value: object, what: str, now: datetime, skew: timedelta) -> datetime:
    if not isinstance(value, str):
        raise Refused([f"{what} : date et heure attendues"])
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused([f"{what} : date et heure illisibles ({value[:40]})"]) from None
    if when.tzinfo is None:
        raise Refused([f"{what} : le fuseau horaire manque"])
    # review HAZ-23-R03: never before 1900; a time of year 1 or 9999 that cannot be moved to UTC crashes downstream
    try:
        utc = when.astimezone(UTC) if when.year >= EARLIEST_YEAR else when
    except OverflowError:
        raise Refused([f"{what} : hors des dates admises ({value[:40]})"]) from None
    if min(when.year, utc.year) < EARLIEST_YEAR:
        raise Refused([f"{what} : avant {EARLIEST_YEAR}, une erreur de saisie"])
    if when > now + skew:
        raise Refused([f"{what} : dans le futur"])
    return when


class _Reader:
    """Walks the answers against the form, collecting every problem before refusing."""

    def __init__(self, form: Form, now: datetime, skew: timedelta) -> None:
        self.form, self.now, self.skew = form, now, skew
        self.problems: list[str] = []
        self.answers: dict[str, list[Any]] = {}  # top-level answers by linkId (for enableWhen)

    def value(self, q: Question, answer: Any) -> Any:
        if not isinstance(answer, dict):
            self.problems.append(f"{_named(q)} : réponse illisible")
            return None
        keys = [k for k in answer if k.startswith("value")]
        allowed = _VALUE[q.type]
        if len(keys) != 1 or keys[0] not in allowed:
            self.problems.append(f"{_named(q)} : réponse de type {q.type} attendue")
            return None
        v = answer[keys[0]]
        if q.type == "choice":
            code = v.get("code") if isinstance(v, dict) else None
            system = v.get("system") if isinstance(v, dict) else None
            if system is not None and system != option_system(q):  # review HAZ-23-R04: another code system's code
                self.problems.append(
                    f"{_named(q)} : « {str(system)[:80]} » n'est pas le système de codes de ce formulaire"
                )
                return None
            if code not in {o.code for o in q.options}:
                self.problems.append(f"{_named(q)} : « {str(code)[:40]} » n'est pas une réponse proposée")
                return None
            return code
        if q.type in ("decimal", "integer"):
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or (q.type == "integer" and not isinstance(v, int))
            ):
                self.problems.append(f"{_named(q)} : nombre {'entier ' if q.type == 'integer' else ''}attendu")
                return None
            if (q.minimum is not None and v < q.minimum) or (q.maximum is not None and v > q.maximum):
                self.problems.append(f"{_named(q)} : {v:g} hors des bornes {q.minimum:g} à {q.maximum:g}")
                return None
            return round(v * q.scale, 6) if q.scale != 1 else v
        if q.type == "boolean":
            if not isinstance(v, bool):
                self.problems.append(f"{_named(q)} : oui ou non attendu")
                return None
            return v
        if q.type == "date":
            try:
                day = date.fromisoformat(v)
            except (TypeError, ValueError):
                self.problems.append(f"{_named(q)} : date complète attendue (AAAA-MM-JJ)")
                return None
            # review HAZ-23-R03: never before 1900; a fact already there (not a plan) never after today
            if day.year < EARLIEST_YEAR:
                self.problems.append(f"{_named(q)} : avant {EARLIEST_YEAR}, une erreur de saisie")
                return None
            if not q.future and day > (self.now + self.skew + _LATEST_OFFSET).date():
                self.problems.append(f"{_named(q)} : dans le futur")
                return None
            return day.isoformat()
        if q.type == "dateTime":
            try:
                return _instant(v, _named(q), self.now, self.skew)
            except Refused as exc:
                self.problems.extend(exc.problems)
                return None
        if not isinstance(v, str) or not v.strip():
            self.problems.append(f"{_named(q)} : texte attendu")
            return None
        if q.max_length is not None and len(v) > q.max_length:
            self.problems.append(f"{_named(q)} : au plus {q.max_length} caractères")
            return None
        if _CONTROL.search(v):  # review HAZ-23-R04: an identifier with a NUL or an escape is an entry error
            self.problems.append(f"{_named(q)} : caractère de contrôle non admis")
            return None
        if q.spinal_levels and not spinal_levels(v):  # review HAZ-23-R04: RT-REIRR must find the course's level
            self.problems.append(f"{_named(q)} : « {v[:40]} » ne nomme aucune vertèbre (ex. T8 ou T7-T9)")
            return None
        return v.strip()

    def enabled(self, when: tuple[str, tuple[str, ...]] | None, scope: dict[str, list[Any]]) -> bool:
        """FHIR enableWhen ("any" of the answers listed): the item it depends on, in the same group or at the top."""
        if when is None:
            return True
        link, codes = when
        got = scope[link] if link in scope else self.answers.get(link, [])
        return any((str(v).lower() if isinstance(v, bool) else v) in codes for v in got)

    def questions(self, specs: tuple[Question, ...], items: Any, where: str) -> dict[str, list[Any]]:
        """The answers of one level (the top, or one instance of a group), by linkId."""
        by_link = {q.link_id: q for q in specs}
        raw: dict[str, list[Any]] = {}
        for it in items if isinstance(items, list) else []:
            link = it.get("linkId") if isinstance(it, dict) else None
            q = by_link.get(link) if isinstance(link, str) else None
            if q is None:
                self.problems.append(f"{where}item « {str(link)[:60]} » : inconnu de ce formulaire")
                continue
            if q.link_id in raw:
                self.problems.append(f"{_named(q)} : présent deux fois")
                continue
            answers = it.get("answer") or []
            if not isinstance(answers, list) or (len(answers) > 1 and not q.repeats):
                self.problems.append(f"{_named(q)} : une seule réponse attendue")
                continue
            # review HAZ-23-R04: these forms nest nothing under a question; nested answers would be dropped unread
            if it.get("item") or any(isinstance(x, dict) and x.get("item") for x in answers):
                self.problems.append(f"{_named(q)} : réponses imbriquées, aucune n'est prévue par ce formulaire")
                continue
            values = [self.value(q, a) for a in answers]
            raw[q.link_id] = [v for v in values if v is not None]
        return raw

    def level(self, specs: tuple[Question, ...], raw: dict[str, list[Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for q in specs:
            got = raw.get(q.link_id, [])
            if not self.enabled(q.when, raw):
                if got:
                    self.problems.append(f"{_named(q)} : sans objet ici (question non proposée), à retirer")
                continue
            if not got:
                if q.required:
                    self.problems.append(f"{_named(q)} : obligatoire")
                continue
            start = raw.get(q.not_before or "", [])
            if start and got[0] < start[0]:  # ISO dates: review HAZ-23-R03, a course cannot end before it starts
                first = next(s for s in specs if s.link_id == q.not_before)
                self.problems.append(f"{_named(q)} : avant « {first.text} » ({first.link_id})")
                continue
            out[q.target] = got if q.repeats else got[0]
        return out


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    parts: dict[str, dict[str, Any]] = {}
    for target, value in flat.items():
        part, _, name = target.partition(".")
        parts.setdefault(part, {})[name] = value
    return parts


def read_answers(form: Form, items: Any, now: datetime, skew: timedelta) -> dict[str, dict[str, Any]]:
    """The answers as contract parts: {part: {field: value}} ("finding", "pain", "assessment", ...)."""
    r = _Reader(form, now, skew)
    tops = tuple(i for i in form.items if isinstance(i, Question))
    groups = {g.link_id: g for g in form.items if isinstance(g, Group)}
    top_items: list[Any] = []
    group_items: dict[str, list[Any]] = {}
    for it in items if isinstance(items, list) else []:
        link = it.get("linkId") if isinstance(it, dict) else None
        if link in groups:
            group_items.setdefault(link, []).append(it)
        else:
            top_items.append(it)
    raw = r.questions(tops, top_items, "")
    r.answers = raw
    flat = r.level(tops, raw)
    for link, g in groups.items():
        instances = group_items.get(link, [])
        if len(instances) > 1 and not g.repeats:
            r.problems.append(f"« {g.text} » ({link}) : une seule fois")
            continue
        if instances and not r.enabled(g.when, raw):
            r.problems.append(f"« {g.text} » ({link}) : sans objet ici, à retirer")
            continue
        if g.max_occurs is not None and len(instances) > g.max_occurs:  # review HAZ-23-R05
            r.problems.append(f"« {g.text} » ({link}) : au plus {g.max_occurs} fois")
            continue
        values = []
        for inst in instances:
            sub_raw = r.questions(g.questions, inst.get("item"), f"« {g.text} » : ")
            values.append(r.level(g.questions, sub_raw))
        values = [v for v in values if v]
        if g.unique is not None:  # review HAZ-23-R04: one pain per lesion, never two to choose from
            key = next(q for q in g.questions if q.link_id == g.unique)
            seen = [str(v[key.target]) for v in values if v.get(key.target) is not None]
            for twice in sorted({k for k in seen if seen.count(k) > 1}):
                r.problems.append(f"{_named(key)} : « {twice[:40]} » donnée deux fois dans « {g.text} »")
        if values:
            flat[g.target] = values if g.repeats else values[0]
    if r.problems:
        raise Refused(r.problems)
    return _nest(flat)


def _links(items: Any) -> set[str]:
    """Every linkId a response answers (groups included)."""
    out: set[str] = set()
    for it in items if isinstance(items, list) else []:
        if isinstance(it, dict) and isinstance(it.get("linkId"), str):
            out.add(it["linkId"])
            out |= _links(it.get("item"))
    return out


def _french(form: Form, exc: ValidationError, part: str, answered: set[str]) -> list[str]:
    """A contract's refusal, naming the item whose field it is (of two items filling one field, e.g. the date of a
    radiotherapy course or of a surgery, the one answered)."""
    by_target: dict[str, Question] = {}
    fields: list[tuple[str, Question]] = []
    for item in form.items:
        if isinstance(item, Group):
            fields += [(f"{item.target.split('.', 1)[1]}.{sub.target}", sub) for sub in item.questions]
        else:
            fields.append((item.target.split(".", 1)[1], item))
    for name, spec in sorted(fields, key=lambda f: f[1].link_id not in answered):
        by_target.setdefault(name, spec)
    out = []
    for err in exc.errors():
        names = [str(x) for x in err["loc"] if not isinstance(x, int)]
        q: Question | None = next(
            (by_target[k] for i in range(len(names)) if (k := ".".join(names[i:])) in by_target), None
        )
        if q is None and names:
            q = next((v for k, v in by_target.items() if k.endswith(names[-1])), None)
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        fr = _CONTRACT_FR.get(msg)
        if fr is None:
            ctx = err.get("ctx") or {}
            fr = {
                "missing": "obligatoire",
                "greater_than": f"doit être supérieur à {ctx.get('gt')}",
                "greater_than_equal": f"doit être au moins {ctx.get('ge')}",
                "less_than": f"doit être inférieur à {ctx.get('lt')}",
                "less_than_equal": f"doit être au plus {ctx.get('le')}",
                "literal_error": "réponse non admise",
                "string_pattern_mismatch": "format non reconnu",
                "uuid_parsing": "identifiant de saisie (UUID) attendu",
                "too_long": "trop long",
                "string_too_long": "trop long",
            }.get(err["type"], f"refusé par le contrat ({msg[:120]})")
        out.append(f"{_named(q)} : {fr}" if q is not None else f"{part} : {fr}")
    return out


def _envelope(patient_id: str, key: str, n: int, occurred: datetime, received: datetime, source: str) -> dict[str, Any]:
    return {
        "event_id": derived_id("questionnaire-response", patient_id, key, n),
        "patient_id": patient_id,
        "occurred_at": occurred,
        "recorded_at": received,
        "source": source,
    }


def source_of(actor: str, form: Form) -> str:
    """`source`: the clinician (token subject) and the form, within the contract's 128 characters."""
    return f"saisie:{form.id}:{actor[:100]}"


def _build(model: type[BaseModel], form: Form, part: str, data: dict[str, Any], answered: set[str]) -> Message:
    try:
        msg = model.model_validate(data)
    except ValidationError as exc:
        raise Refused(_french(form, exc, part, answered)) from None
    assert isinstance(msg, Message)
    return msg


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it gives a key twice (review HAZ-23-R04: never one of two subjects chosen)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        twice = sorted({k for k, _ in pairs if [x for x, _ in pairs].count(k) > 1})
        raise Refused([f"clé JSON « {k[:40]} » donnée deux fois dans un même objet" for k in twice[:5]])
    return out


def read_response(raw: bytes | dict[str, Any], actor: str, now: datetime, skew: timedelta) -> Entry:
    """A QuestionnaireResponse (JSON) to the contract messages it stands for; raises `Refused`."""
    doc = json.loads(raw, object_pairs_hook=_unique_keys) if isinstance(raw, bytes) else raw
    if not isinstance(doc, dict) or doc.get("resourceType") != "QuestionnaireResponse":
        raise Refused(["resourceType : QuestionnaireResponse attendu"])
    form = form_of(doc.get("questionnaire"))
    status = doc.get("status")
    correction = form.questions().get("record_status")
    if status == "entered-in-error" and correction is not None:  # review HAZ-23-R01: the contracts' own way
        raise Refused(
            [
                f"status : « entered-in-error » ; pour retirer une saisie, envoyez une réponse completed avec "
                f"{_named(correction)} « Saisie erronée » et l'identifiant de la saisie retirée (corrects)"
            ]
        )
    if status not in ("completed", "amended"):
        raise Refused([f"status : « {str(status)[:20]} » ; seule une réponse terminée (completed) est prise"])
    patient_id = _patient(doc.get("subject"))
    if doc.get("authored") is None:  # review HAZ-23-R02: the clinical time of the entry, never the receipt's
        raise Refused(["authored : obligatoire (date et heure de la saisie, jamais devinée)"])
    authored = _instant(doc["authored"], "authored", now, skew)
    parts = read_answers(form, doc.get("item"), now, skew)
    if status == "amended" and correction is not None:  # review HAZ-23-R01: a correction names what it corrects
        part = correction.target.split(".", 1)[0]
        if parts.get(part, {}).get("record_status") not in CORRECTED:
            raise Refused(
                [
                    f"{_named(correction)} : une réponse modifiée (status amended) corrige une saisie : « Correction "
                    "d'une saisie » ou « Saisie erronée », avec l'identifiant de la saisie corrigée (corrects)"
                ]
            )
    links = _links(doc.get("item"))
    # the same content from the same clinician gives the same event IDs (a retried POST is a duplicate delivery)
    body = {k: doc.get(k) for k in ("questionnaire", "subject", "authored", "item", "status")}
    key = hashlib.sha256(json.dumps([actor, body], sort_keys=True, default=str).encode()).hexdigest()
    src = source_of(actor, form)

    def env(n: int, occurred: datetime) -> dict[str, Any]:
        return _envelope(patient_id, key, n, occurred, now, src)

    def build(model: type[BaseModel], part: str, data: dict[str, Any]) -> Message:
        return _build(model, form, part, data, links)

    messages: list[Message] = []
    if form.id == "lesion-finding":
        finding = parts.get("finding", {})
        messages.append(build(ImagingFinding, "finding", env(0, parts["meta"]["examined_at"]) | finding))
        pain = parts.get("pain")
        if pain and finding.get("record_status") == "entered-in-error":
            raise Refused(["douleur : une saisie erronée retire la constatation ; la douleur ne s'y saisit pas"])
        if pain:  # the lesion's pain (Mirels, SINS): an assessment, as the bus sends it
            lesion_pain = [{"lesion_id": finding["lesion_id"], **pain}]
            messages.append(build(ClinicalAssessment, "pain", env(1, authored) | {"lesion_pain": lesion_pain}))
    elif form.id == "assessment":
        data = parts.get("assessment", {})
        if not {k for k in data if k not in ("record_status", "corrects")} and data.get("record_status") != (
            "entered-in-error"
        ):
            raise Refused(["évaluation : aucune donnée saisie"])
        messages.append(build(ClinicalAssessment, "assessment", env(0, authored) | data))
    elif form.id == "surgical-opinion":
        data = parts.get("assessment", {}) | {"surgical_opinion": parts["opinion"]}
        messages.append(build(ClinicalAssessment, "opinion", env(0, authored) | data))
    elif form.id == "local-treatment-request":
        messages.append(build(LocalTreatmentRequest, "request", env(0, authored) | parts["request"]))
    else:
        data = parts.get("treatment_event", {}) | {"treatment": parts["treatment"]}
        messages.append(build(TreatmentEvent, "treatment", env(0, authored) | data))
    return Entry(form, patient_id, messages)
