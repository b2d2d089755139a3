"""HL7 v2 acknowledgements (issue 24): which acknowledgement a message asked for (MSH-15/16, original, accept or
application mode), whether it is sent, and the ACK itself (MSH, MSA, one ERR per problem), in the message's character
set. The message's parsing is in hl7v2.py, its MSH and character sets in hl7_segments.py."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from contracts.base import derived_id
from services.lab_normalisation.hl7_segments import CHARSETS, Hl7Message

_NOT_TRIGGER = re.compile(r"[^A-Z0-9]")

AckCode = Literal["AA", "AE", "AR", "CA", "CE", "CR"]

#: MSH-15 / MSH-16 acknowledgement conditions (HL7 table 0155)
ACK_CONDITIONS = ("AL", "NE", "ER", "SU")

AckMode = Literal["original", "accept", "application"]


def ack_mode(header: Hl7Message) -> tuple[AckMode, str | None]:
    """Issue 24, MSH-15 / MSH-16: both empty, original mode (one application ACK, AA/AE/AR); MSH-15 AL/ER/SU,
    an accept (commit) ACK (CA/CE/CR); MSH-16 AL/ER/SU with MSH-15 empty or NE, an application ACK. Both asked
    for is refused (the reason says what to send): this receiver has no return connection for a second ACK.
    Returns the mode and the refusal, if any."""
    accept, application = header.accept_ack, header.application_ack
    bad = [f"MSH-{n} {v[:8]!r}" for n, v in ((15, accept), (16, application)) if v and v not in ACK_CONDITIONS]
    if bad:
        return "original", f"{', '.join(bad)}: not an acknowledgement condition (AL, NE, ER or SU)"
    if not accept and not application:
        return "original", None
    if accept not in ("", "NE") and application not in ("", "NE"):
        return "accept", (
            f"MSH-15 {accept} and MSH-16 {application}: an accept and an application acknowledgement were both asked "
            "for; this receiver answers each message with one acknowledgement on the same connection: send MSH-16 "
            "NE (accept acknowledgement CA/CE/CR), MSH-15 NE (application acknowledgement AA/AE/AR), or neither"
        )
    return ("accept", None) if accept not in ("", "NE") else ("application", None)


def ack_wanted(header: Hl7Message, mode: AckMode, ok: bool) -> bool:
    """Whether the acknowledgement is sent at all (MLLP): AL always, NE never, ER on an error, SU on success."""
    condition = {"original": "AL", "accept": header.accept_ack, "application": header.application_ack}[mode] or "AL"
    return condition == "AL" or (condition == "ER" and not ok) or (condition == "SU" and ok)


def commit_code(code: AckCode, published: bool) -> AckCode:
    """The accept (commit) acknowledgement of an application verdict: CA when the message was kept (published,
    or valid and holding nothing used), CR when it was refused whole, CE when nothing of it could be kept."""
    if code == "AR":
        return "CR"
    return "CA" if published or code == "AA" else "CE"


_VERSION = re.compile(r"^\d\.\d{1,2}(\.\d{1,2})?$")

_PROCESSING = re.compile(r"^[A-Z](\^[A-Z]?)?$")


def hl7_ack(
    header: Hl7Message,
    code: AckCode,
    errors: Iterable[str] = (),
    now: datetime | None = None,
    receiving: tuple[str, str] = ("OSTEOCDS", "OSTEOCDS"),
) -> str:
    """An HL7 ACK: MSH-3/4 the receiving application and facility (configurable), MSH-5/6 the sender's MSH-3/4
    (every HD component), MSH-11/12 the sender's processing ID and version (P and 2.5 when it sent none or an
    invalid one), MSH-18 its character set; MSA with the answered control ID, and one ERR per problem (or note)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S+0000")
    control = derived_id("ack", header.control_id, stamp).hex[:20]
    trigger = _NOT_TRIGGER.sub("", header.trigger.upper())[:3] or "R01"
    app = _hd(header.application_hd or [header.sending_application])
    facility = _hd(header.facility_hd or [header.sending_facility])
    processing = header.processing_id.upper() if _PROCESSING.fullmatch(header.processing_id.upper()) else "P"
    version = header.version if _VERSION.fullmatch(header.version) else "2.5"
    charset = header.charset if header.charset in CHARSETS else ""
    lines = [
        f"MSH|^~\\&|{_hd(receiving[0].split('^'))}|{_hd(receiving[1].split('^'))}|{app}|{facility}|{stamp}"
        f"||ACK^{trigger}^ACK|{control}|{processing}|{version}" + (f"||||||{charset}" if charset else ""),
        f"MSA|{code}|{_esc(header.control_id)}",
    ]
    severity = "E" if code not in ("AA", "CA") else "I"
    lines += [f"ERR||||{severity}||||{_esc(e)[:500]}" for e in errors]
    return "\r".join(lines) + "\r"


def ack_codec(header: Hl7Message) -> str:
    """The codec an ACK is encoded in: the message's declared character set (MSH-18), else UTF-8."""
    return CHARSETS.get(header.charset, "utf-8")


def _hd(components: list[str]) -> str:
    return "^".join(_esc(c) for c in components)


def _esc(text: str) -> str:
    """HL7 escape sequences for the delimiter characters."""
    out = text.replace("\\", "\\E\\")
    for ch, seq in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"), ("\r", " "), ("\n", " ")):
        out = out.replace(ch, seq)
    return out


@dataclass(frozen=True)
class Hl7Answer:
    """What HTTP and MLLP send back for one HL7 message: the ACK, its code and the HTTP status; whether MLLP
    sends it (MSH-15/16), and the character set it is encoded in (the message's MSH-18)."""

    ack: str
    code: AckCode
    status: int
    send: bool = True
    codec: str = "utf-8"
    #: issue 25: the admission budget was spent: seconds until it opens again (HTTP Retry-After)
    retry_after: int | None = None

    def encoded(self) -> bytes:
        return self.ack.encode(self.codec, errors="replace")
