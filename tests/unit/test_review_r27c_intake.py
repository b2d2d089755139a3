"""Review R27C (issue 25, commit 2fe4d3f): the intake's refusal before parsing.

- `patient_of_hl7` (MSH and PID alone) against `from_hl7` over generated messages: PID-3 repetitions and the
  per-facility identifier rules, escapes, MLLP framing, a BOM, ISO-8859-1, CR / LF / CRLF, trailing blanks,
  other segments before and after the PID, a second PID, MSH-4 variants. Whenever the parser accepts a message,
  both give the same patient key.
- `IntakeBudget.spent` against `take`: the same threshold (a message is admitted while the window is below its
  budget), counted once per refusal, no PHI in the reason, and None when Redis does not answer.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.lab_normalisation.admission import Budget
from services.lab_normalisation.common import AnalyteMap, IdRule
from services.lab_normalisation.hl7v2 import from_hl7, patient_of_hl7
from services.lab_normalisation.intake_budget import BudgetMetrics, IntakeBudget
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

ROOT = Path(__file__).resolve().parents[2]
ANALYTES = AnalyteMap.load(ROOT / "services/lab_normalisation/local_codes.yaml")
#: the configured rules plus a facility taking an untyped identifier only when alone, and an authority rule
RULES = AnalyteMap(
    ANALYTES.local,
    {
        **ANALYTES.id_rules,
        "SOLE-LAB": (IdRule("", sole=True),),
        "AUTH-LAB": (IdRule("MR", "SITE-B"), IdRule("PI", "SITE-A")),
    },
)
PARIS = ZoneInfo("Europe/Paris")
GUARD = NotAfter(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))

FACILITIES = [
    "HOSP",
    "CHU-LYON-BIO",
    "chu-lyon-bio",
    "CHU-LYON-BIO^1.2.3^ISO",
    "CHU\\T\\LYON",
    "SOLE-LAB",
    "AUTH-LAB",
    "AUTH-LAB ",
    "",
]
VALUES = ["A1", "P-2", "b.3", "123-45-6789", "1234567890123", "", "X\\T\\Y", "Z\\E\\9", "é1", "Q:7"]
TYPES = ["PI", "MR", "pi", "PT", "", "SS", "NNFRA", " MR", "MR\\S\\X"]
AUTHS = ["", "CHU-LYON", "CHU-LYON&1.2.250&ISO", "SITE-A", "SITE-B", "SITE-A&&", "OTHER"]
BLANKS = ["", " ", "\t", "\xa0", "\x0c", "\x85", "\x1c"]
ENCODINGS = ["^~\\&", "@*!%", "^\x1f\\&", "\x1e~\\&", "^~\\\x1d", "^\x85\\&"]
OTHER = [
    "PV1|1|I|WARD",
    "ORC|RE|ORD1",
    "NTE|1||note \\F\\ here",
    "OBR|1||ORD1|||202612060900",
    "OBX|1|NM|2160-0^Creatinine^LN||80|umol/L|||||F",
    "SPM|1|||BLD|||||||||||||202612060800",
    "ZPI|||Z9^^^^PI",
    "PIDX|||Z9^^^^PI",
]


@st.composite
def messages(draw: Any) -> bytes:
    reps = draw(
        st.lists(
            st.tuples(st.sampled_from(VALUES), st.sampled_from(TYPES), st.sampled_from(AUTHS)), min_size=0, max_size=3
        )
    )
    pid3 = "~".join(f"{v}^^^{a}^{t}" if (a or t) else v for v, t, a in reps)
    pid = f"PID|1||{pid3}||Dupont^Hélène||19500101|F" if draw(st.booleans()) else f"PID|||{pid3}"
    pid += draw(st.sampled_from(BLANKS))
    facility = draw(st.sampled_from(FACILITIES))
    latin = draw(st.booleans())
    msh = f"MSH|^~\\&|LAB|{facility}|OSTEO|CDS|202612061000||ORU^R01|C1|P|2.5" + ("||||||8859/1" if latin else "")
    before = draw(st.lists(st.sampled_from(OTHER), max_size=2))
    after = draw(st.lists(st.sampled_from(OTHER), max_size=3))
    extra_pid = [f"PID|||{draw(st.sampled_from(VALUES))}^^^^PI"] if draw(st.sampled_from(range(10))) == 9 else []
    segments = [msh, *before, pid, *after, *extra_pid]
    sep = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    text = sep.join(segments) + draw(st.sampled_from(["", sep, " ", "\x1c"]))
    # other encoding characters (HL7 lets the sender choose them in MSH-2), whitespace ones included: str.strip()
    # (in `hl7.parse`) removes those at the end of the last segment, the PID when MSH and PID are parsed alone
    text = text.translate(str.maketrans("^~\\&", draw(st.sampled_from(ENCODINGS))))
    raw = text.encode("latin-1" if latin else "utf-8", errors="replace")
    if not latin and draw(st.booleans()):
        raw = b"\xef\xbb\xbf" + raw
    if draw(st.booleans()):
        raw = b"\x0b" + raw + b"\x1c\r"
    return bytes(raw)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=messages())
def test_the_patient_read_before_parsing_is_the_parsers_whenever_the_parser_accepts(raw: bytes) -> None:
    early = patient_of_hl7(raw, RULES)
    try:
        batch = from_hl7(raw, RULES, PARIS, GUARD)
    except Rejected:
        return  # the message is refused whole: no results of anyone's are at stake (at worst 429 instead of 400)
    assert early == batch.patient_id, raw


def _pid_last(raw: bytes) -> bytes:
    segments: list[bytes] = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    return b"\r".join(
        [s for s in segments if not s.startswith(b"PID|")] + [s for s in segments if s.startswith(b"PID|")]
    )


FRAMINGS: dict[str, Any] = {
    "as is": lambda raw: raw,
    "LF": lambda raw: raw.replace(b"\r\n", b"\r").replace(b"\r", b"\n"),
    "CRLF": lambda raw: raw.replace(b"\r\n", b"\r").replace(b"\r", b"\r\n"),
    "MLLP": lambda raw: b"\x0b" + raw + b"\x1c\r",
    "BOM": lambda raw: b"\xef\xbb\xbf" + raw,
    "PID last": lambda raw: _pid_last(raw),
}


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "tests/corpus/hl7").glob("*.hl7")))
def test_every_corpus_message_framed_any_way_gives_the_parsers_patient(name: str, framing: str) -> None:
    raw = FRAMINGS[framing]((ROOT / "tests/corpus/hl7" / name).read_bytes())
    early = patient_of_hl7(raw, ANALYTES)
    try:
        batch = from_hl7(raw, ANALYTES, PARIS, NotAfter(datetime(2026, 11, 28, 12, 0, tzinfo=UTC)))
    except Rejected:
        return
    assert early == batch.patient_id


class _Redis:
    """The three calls `IntakeBudget` makes, in memory; `down` raises as a Redis that does not answer."""

    def __init__(self, down: Exception | None = None) -> None:
        self.data: dict[str, int] = {}
        self.down = down

    async def get(self, key: str) -> bytes | None:
        if self.down is not None:
            raise self.down
        return str(self.data[key]).encode() if key in self.data else None

    async def eval(self, _script: str, _n: int, key: str, size: int, _ttl: int) -> int:
        if self.down is not None:
            raise self.down
        self.data[key] = self.data.get(key, 0) + size
        return self.data[key]

    async def decrby(self, key: str, size: int) -> int:
        if self.down is not None:
            raise self.down
        self.data[key] = self.data.get(key, 0) - size
        return self.data[key]


def _budget(redis: _Redis) -> tuple[IntakeBudget, BudgetMetrics]:
    metrics = BudgetMetrics(CollectorRegistry(), "lab-normalisation")
    return IntakeBudget(redis, "lab-normalisation", Budget(60_000, 10, 20), metrics), metrics  # type: ignore[arg-type]


def _refused(metrics: BudgetMetrics, scope: str) -> float:
    return float(metrics.refused.labels("lab-normalisation", "mllp", scope)._value.get())


@pytest.mark.parametrize("before", [0, 1, 9, 10, 11, 500])
async def test_spent_refuses_exactly_when_take_would_refuse_and_counts_once(before: int) -> None:
    at_ms = 1_800_000_000_000
    for size in (1, 7):
        redis = _Redis()
        counts, metrics = _budget(redis)
        key = counts._key("patient", "P-1", at_ms)
        redis.data[key] = before
        early = await counts.spent("mllp", "patient", "P-1", at_ms)
        assert redis.data[key] == before  # nothing taken
        assert _refused(metrics, "patient") == (1 if early else 0)
        late = await counts.take("mllp", "patient", "P-1", size, at_ms)
        assert (early is None) == (late is None) == (before < 10)
        assert redis.data[key] == (before + size if late is None else before)
        if early is not None:
            assert "P-1" not in early  # no patient ID in the reason the sender and the logs see


@pytest.mark.parametrize("error", [RedisConnectionError("down"), RedisTimeoutError("slow"), OSError("reset")])
async def test_spent_does_not_refuse_when_redis_does_not_answer(error: Exception) -> None:
    counts, metrics = _budget(_Redis(down=error))
    assert await counts.spent("mllp", "source", "mllp:peer", 1_800_000_000_000) is None
    assert await counts.spent("mllp", "patient", "P-1", 1_800_000_000_000) is None
    assert _refused(metrics, "source") == _refused(metrics, "patient") == 0


class _FrozenRedis(_Redis):
    """A Redis that stops answering: every command fails after the client's socket timeout (shortened here)."""

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0.5)
        raise RedisTimeoutError("Timeout reading from socket")


async def test_a_frozen_redis_costs_the_early_check_no_wait() -> None:
    """The early check is an optimisation (`take` decides after the parse): it must not add a Redis timeout. One
    fix: `spent` bounds its GET well below the socket timeout (asyncio.wait_for, None when it expires)."""
    counts, _ = _budget(_FrozenRedis())
    started = time.monotonic()
    assert await counts.spent("mllp", "source", "mllp:peer", 1_800_000_000_000) is None
    assert time.monotonic() - started < 0.2
