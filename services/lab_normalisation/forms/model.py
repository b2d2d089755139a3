"""How a form is described (issue 23): its questions and groups, their answer options (each Mirels or SINS option
carrying its points, extension `POINTS_URL`), and the FHIR identifiers the Questionnaires use. LOINC codes only where
one exists and was checked: ECOG 89247-1, pain severity 0-10 72514-3. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

BASE: Final = "https://osteocds.example.org/fhir"
#: a score's points for an answer option: extension with `score` (code) and `points` (integer)
POINTS_URL: Final = f"{BASE}/StructureDefinition/score-points"
#: the contract field an item fills (documentation for integrators; the mapping uses the description itself)
TARGET_URL: Final = f"{BASE}/StructureDefinition/contract-field"
LOINC: Final = "http://loinc.org"
MAX_OCCURS_URL: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
VERSION: Final = "1"

QuestionType = Literal["choice", "decimal", "integer", "boolean", "date", "dateTime", "string"]


@dataclass(frozen=True)
class Option:
    code: str
    display: str
    #: (score, points): SCORE-MIRELS / SCORE-SINS points of this answer
    points: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Question:
    link_id: str
    text: str
    type: QuestionType
    #: where the answer goes: "<part>.<field>" at the top level, "<field>" inside a group
    target: str
    required: bool = False
    options: tuple[Option, ...] = ()
    loinc: tuple[str, str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    #: enabled only when the item `when[0]` has one of the answers `when[1]` (codes; "true"/"false" for booleans)
    when: tuple[str, tuple[str, ...]] | None = None
    #: the answer is multiplied by this before it is stored (a percentage entered, a fraction in the contract)
    scale: float = 1.0
    repeats: bool = False
    #: the score item this question is (SCORE-MIRELS / SCORE-SINS), shown by the page
    score_item: tuple[str, str] | None = None
    max_length: int | None = None
    #: a date that may be after today (a plan); every other date is of a fact already there (review HAZ-23-R03)
    future: bool = False
    #: the linkId of the date (same level) this one may not precede: a course's last fraction (review HAZ-23-R03)
    not_before: str | None = None
    #: free text naming vertebral levels, as the radiotherapy planner reads them (review HAZ-23-R04)
    spinal_levels: bool = False


@dataclass(frozen=True)
class Group:
    link_id: str
    text: str
    target: str
    questions: tuple[Question, ...]
    repeats: bool = False
    when: tuple[str, tuple[str, ...]] | None = None
    #: at most this many instances (questionnaire-maxOccurs; review HAZ-23-R05)
    max_occurs: int | None = None
    #: the linkId whose answer no two instances may share (one pain per lesion; review HAZ-23-R04)
    unique: str | None = None


Item = Question | Group


@dataclass(frozen=True)
class Form:
    id: str
    title: str
    description: str
    items: tuple[Item, ...]
    #: the topics it publishes on (documentation)
    publishes: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        return f"{BASE}/Questionnaire/{self.id}"

    def questions(self) -> dict[str, Question]:
        """Every question by linkId (those inside groups too)."""
        out: dict[str, Question] = {}
        for item in self.items:
            for q in item.questions if isinstance(item, Group) else (item,):
                out[q.link_id] = q
        return out


#: UCUM code -> what the page shows
UNIT_DISPLAY: Final = {"mo": "mois", "Gy": "Gy", "%": "%", "cm": "cm", "mg": "mg"}


def option_system(q: Question) -> str:
    """The code system of a choice question's answer options (a coding of another system is not an option)."""
    return f"{BASE}/CodeSystem/{q.link_id.split('.')[-1]}"


def _opts(*pairs: tuple[str, str]) -> tuple[Option, ...]:
    return tuple(Option(code, display) for code, display in pairs)
