"""Write the JSON Schemas of every topic's value model to contracts/schemas/.

    python -m contracts.generate          # regenerate
    python -m contracts.generate --check  # exit 1 if a committed schema is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from contracts.topics import TOPICS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def render() -> dict[str, str]:
    """File name -> JSON Schema text, for every value model in the topic registry."""
    out: dict[str, str] = {}
    for topic in TOPICS:
        model = topic.value
        schema = model.model_json_schema()
        schema["$id"] = f"urn:osteocds:{model.schema_id}"  # type: ignore[attr-defined]
        schema["x-topic"] = topic.name
        out[f"{topic.name}.json"] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def stale() -> list[str]:
    rendered = render()
    bad = [n for n, text in rendered.items() if not (SCHEMA_DIR / n).is_file()
           or (SCHEMA_DIR / n).read_text(encoding="utf-8") != text]
    extra = [p.name for p in SCHEMA_DIR.glob("*.json") if p.name not in rendered]
    return sorted(bad + extra)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = stale()
        for name in bad:
            print(f"stale schema: contracts/schemas/{name} (run: python -m contracts.generate)")
        return 1 if bad else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for p in SCHEMA_DIR.glob("*.json"):
        p.unlink()
    for name, text in render().items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(TOPICS)} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
