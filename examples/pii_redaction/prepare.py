"""Build examples/pii_redaction/{test,train}.jsonl from Presidio's synthetic dataset (MIT).

Each record becomes {"text", "answer": {"redacted_text", "entities": [{"value", "entity_type"}]}}:
every span is replaced by [ENTITY_TYPE] in the original text; entities are listed in text order.
Deterministic: the first 200 records are the test split, the next 300 the train split.
Run: python examples/pii_redaction/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def convert(record: dict) -> dict:
    text = record["full_text"]
    spans = sorted(record["spans"], key=lambda s: s["start_position"])
    pieces, last = [], 0
    for span in spans:
        pieces.append(text[last:span["start_position"]])
        pieces.append(f"[{span['entity_type']}]")
        last = span["end_position"]
    pieces.append(text[last:])
    entities = [{"value": s["entity_value"], "entity_type": s["entity_type"]} for s in spans]
    return {"text": text, "answer": {"redacted_text": "".join(pieces), "entities": entities}}


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    records = json.loads((shared / "data/pii/presidio_synth_dataset_v2.json").read_text(encoding="utf-8"))
    rows = [convert(r) for r in records]
    for name, part in (("test", rows[:200]), ("train", rows[200:500])):
        with open(out / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for row in part:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "LICENSE_presidio-research").write_bytes((shared / "data/pii/LICENSE_presidio-research").read_bytes())


if __name__ == "__main__":
    main(sys.argv[1:])
