"""Build examples/hotpotqa/test.jsonl from the HotpotQA distractor dev samples (CC BY-SA 4.0).

Each record becomes {"id", "question", "context", "answer"}; the context is every paragraph as
"Title: sentences", paragraphs separated by a blank line. Records are de-duplicated by id, in
file order (the 53 first dev records, then the 100-record sample).
Run: python examples/hotpotqa/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("hotpot_dev_distractor_first53.json", "reflexion_hotpot_distractor_sample100.json")


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    with open(out / "test.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for name in SOURCES:
            for record in json.loads((shared / "data/hotpotqa" / name).read_text(encoding="utf-8")):
                if record["_id"] in seen:
                    continue
                seen.add(record["_id"])
                context = "\n\n".join(f"{title}: {''.join(sentences).strip()}" for title, sentences in record["context"])
                row = {"id": record["_id"], "question": record["question"], "context": context, "answer": record["answer"]}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
