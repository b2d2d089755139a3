"""HL7 v2 text and segments (the `hl7` package), for the parser (hl7v2.py) and the ACK (hl7_acks.py). Pure, no I/O.

- Text (issue 24): in the character set MSH-18 declares (ASCII, 8859/1-9 and 15, UNICODE UTF-8, and their ISO IR
  names; another set, or bytes invalid in the declared one, is refused with the reason); without MSH-18, UTF-8 (a
  byte-order mark is skipped) else ISO-8859-1. MLLP framing stripped; CR, CRLF or LF between segments; trailing
  blanks of a segment ignored. So none of these change any result or ID.
- Fields: one component or subcomponent of a segment, unescaped and stripped ("" where absent).
- The MSH an ACK needs (`Hl7Message`), read even from a message that fails later checks, or whose character set or
  size is refused.
"""

from __future__ import annotations

import re

import hl7
from hl7.util import unescape
from pydantic import BaseModel

from services.lab_normalisation.common import MAX_MESSAGE_BYTES
from shared.errors import Rejected

#: issue 25: compiled once, not looked up in `re`'s cache on every message
_LINE_END = re.compile(r"\r\n|\n|\r")
_LINE_END_BYTES = re.compile(rb"[\r\n]")


#: MSH-18 (HL7 table 0211, and the ISO IR names some senders use) -> Python codec; MLLP needs a set in which the
#: framing bytes and the MSH are ASCII, so UTF-16/32 and the ISO 2022 sets are not supported
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    "ISO IR100": "iso8859-1",
    "ISO IR101": "iso8859-2",
    "ISO IR109": "iso8859-3",
    "ISO IR110": "iso8859-4",
    "ISO IR144": "iso8859-5",
    "ISO IR127": "iso8859-6",
    "ISO IR126": "iso8859-7",
    "ISO IR138": "iso8859-8",
    "ISO IR148": "iso8859-9",
    "UNICODE UTF-8": "utf-8",
    "ISO IR192": "utf-8",
    "UTF-8": "utf-8",
}


class Hl7Message(BaseModel):
    """What an ACK needs to know about the message it answers (read from the MSH alone)."""

    control_id: str = ""
    sending_application: str = ""
    sending_facility: str = ""
    trigger: str = "R01"
    #: every component of MSH-3 / MSH-4 (HD: namespace ID, universal ID, its type)
    application_hd: list[str] = []
    facility_hd: list[str] = []
    #: MSH-11 processing ID (and mode), MSH-12 version, MSH-15 / MSH-16, MSH-18 as sent
    processing_id: str = ""
    version: str = ""
    accept_ack: str = ""
    application_ack: str = ""
    charset: str = ""


def declared_charset(raw: bytes) -> str:
    """MSH-18's first repetition, read from the MSH bytes (ASCII in every supported set); "" when absent."""
    start = raw.lstrip(b"\x0b\r\n \t")
    start = start[3:] if start.startswith(b"\xef\xbb\xbf") else start
    if not start.startswith(b"MSH") or len(start) < 8:
        return ""
    sep, repeat = start[3:4], start[5:6]
    fields = _LINE_END_BYTES.split(start, maxsplit=1)[0].split(sep)
    value = fields[17] if len(fields) > 17 else b""
    return value.split(repeat)[0].split(start[4:5])[0].decode("ascii", "replace").strip().upper()


def _decode(raw: bytes) -> str:
    charset = declared_charset(raw)
    if not charset:
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    codec = CHARSETS.get(charset)
    if codec is None:
        supported = ", ".join(k for k in CHARSETS if not k.startswith("ISO IR") and k != "UTF-8")
        raise Rejected(f"MSH-18 character set {charset[:40]!r} is not supported (supported: {supported})")
    try:
        return raw.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        raise Rejected(f"the message is not valid {charset}, the character set MSH-18 declares") from exc


def hl7_text(raw: bytes) -> str:
    """Decode (in MSH-18's character set; without one, UTF-8 without its BOM, else ISO-8859-1), strip MLLP
    framing and trailing blanks of each segment, use CR between segments."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected(f"HL7 message larger than {MAX_MESSAGE_BYTES} bytes")
    text = _decode(raw)
    text = text.lstrip("\ufeff").strip("\x0b\x1c\r\n \t")
    return "\r".join(s for s in (line.rstrip(" \t") for line in _LINE_END.split(text)) if s.strip())


def _field(seg: hl7.Segment, field: int, component: int = 1, repeat: int = 1) -> str:
    """`seg.extract_field(1, field, repeat, component)` (first subcomponent, unescaped, stripped), with ""
    where that raises. The same walk without the library's per-call accessor bookkeeping: this is called
    ~30 times per message (a test checks it against `extract_field` on generated segments)."""
    subs = _subs(seg, field, component, repeat)
    return subs[0] if subs else ""


def _subs(seg: hl7.Segment, field: int, component: int = 1, repeat: int = 1) -> list[str]:
    """Every subcomponent of one component (unescaped, stripped)."""
    try:
        if field >= len(seg):
            return []
        rep = seg[field][repeat - 1]
        if not isinstance(rep, hl7.Repetition):
            if component != 1:
                return []
            leaf = rep if field in (1, 2) and seg[0][0] == "MSH" else unescape(seg, rep)
            return [str(leaf).strip()]
        if component > len(rep):
            return []
        comp = rep[component - 1]
        if not isinstance(comp, hl7.Component):
            return [str(unescape(seg, comp)).strip()]
        return [str(unescape(seg, s)).strip() for s in comp] or [""]
    except (IndexError, KeyError, AttributeError, TypeError):
        return []


def _repeats(seg: hl7.Segment, field: int) -> int:
    try:
        return len(seg[field]) if field < len(seg) else 0
    except (TypeError, IndexError):
        return 0


def _components(seg: hl7.Segment, field: int) -> list[str]:
    out: list[str] = []
    for c in range(1, 11):
        subs = _subs(seg, field, c)
        if not subs:
            break
        out.append(subs[0])
    while out and not out[-1]:
        out.pop()
    return out


def hl7_header(text: str) -> Hl7Message:
    """MSH fields for an ACK, read even from a message that fails later checks."""
    try:
        msh = hl7.parse(text.split("\r", 1)[0].split("\n", 1)[0]).segment("MSH")
    except Exception:
        return Hl7Message()
    return Hl7Message(
        control_id=_field(msh, 10),
        sending_application=_field(msh, 3),
        sending_facility=_field(msh, 4),
        trigger=_field(msh, 9, 2) or "R01",
        application_hd=_components(msh, 3),
        facility_hd=_components(msh, 4),
        processing_id="^".join(_components(msh, 11)),
        version=_field(msh, 12),
        accept_ack=_field(msh, 15).upper(),
        application_ack=_field(msh, 16).upper(),
        charset=_field(msh, 18).upper(),
    )


def header_of(raw: bytes) -> Hl7Message:
    """The MSH of any bytes, even ones whose character set or size is refused (for the ACK that says so)."""
    try:
        text = hl7_text(raw[:65536] if len(raw) > MAX_MESSAGE_BYTES else raw)
    except Rejected:
        text = raw[:65536].decode("latin-1").lstrip("\x0b\r\n \t\ufeff")
    return hl7_header(text.strip("\x0b\x1c\r\n \t"))
