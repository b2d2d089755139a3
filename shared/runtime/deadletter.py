"""Dead letters that always fit.

A dead letter carries the reason and the original bytes (base64). A large record (a 5 MB value, an 870 KB FHIR
Bundle with one bad result) would make that letter larger than the producer's request limit, and the send
error would stop the consumer loop on the same record at every restart. So the payload is cut to
`dead_letter_max_payload_bytes`, the letter says so (`value_truncated`, with the original's size and SHA-256),
and the original stays addressable by topic/partition/offset for the source topic's retention. Keys, header
values and the reason are bounded too; whatever remains too large is dropped, never the letter itself.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from contracts.clinical import DeadLetter
from shared.settings import Settings

MAX_KEY_BYTES = 1024
MAX_HEADERS = 32
MAX_HEADER_CHARS = 512
MAX_REASON_CHARS = 4000
#: room left for the record's own framing (key, headers, batch overhead) within the request limit
ENVELOPE_BYTES = 8192


def _b64(raw: bytes | None, limit: int) -> tuple[str | None, bool]:
    if raw is None:
        return None, False
    return base64.b64encode(raw[:limit]).decode(), len(raw) > limit


def build(record: ConsumerRecord, service: str, error_type: str, reason: str, settings: Settings) -> DeadLetter:
    """The dead letter for `record`, encoded size below the producer's request limit."""
    headers: dict[str, str] = {}
    for k, v in list(record.headers or ())[:MAX_HEADERS]:
        headers[str(k)[:MAX_HEADER_CHARS]] = "" if v is None else bytes(v)[:MAX_HEADER_CHARS].decode("utf-8", "replace")
    key_b64, key_cut = _b64(record.key, MAX_KEY_BYTES)
    value: bytes | None = record.value
    budget = max(
        0,
        min(
            settings.dead_letter_max_payload_bytes,
            (settings.kafka_max_request_bytes - ENVELOPE_BYTES) * 3 // 4 - 16_384,
        ),
    )
    value_b64, value_cut = _b64(value, budget)
    if value_cut:
        reason = f"{reason} [original value of {len(value or b'')} bytes truncated to {budget} in this dead letter]"
    return DeadLetter(
        service=service,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key_b64=key_b64,
        value_b64=value_b64,
        headers=headers,
        error_type=error_type[:200],
        reason=reason[:MAX_REASON_CHARS],
        failed_at=datetime.now(UTC),
        value_size=None if value is None else len(value),
        value_sha256=None if value is None else hashlib.sha256(value).hexdigest(),
        value_truncated=value_cut,
        key_truncated=key_cut,
    )


def encode(letter: DeadLetter, settings: Settings) -> bytes:
    """The letter's JSON, guaranteed to fit: if it still does not (it cannot with the bounds above, unless the
    limits are set inconsistently), the payload is dropped and the letter says so."""
    raw = letter.model_dump_json().encode()
    if len(raw) + ENVELOPE_BYTES <= settings.kafka_max_request_bytes:
        return raw
    return (
        letter.model_copy(update={"value_b64": None, "value_truncated": True, "headers": {}}).model_dump_json().encode()
    )


def key_for(record: ConsumerRecord) -> bytes | None:
    """The dead letter's own key: the original key (same partitioning) unless it is oversized."""
    return record.key if record.key is None or len(record.key) <= MAX_KEY_BYTES else None
