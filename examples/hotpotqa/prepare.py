"""Build examples/hotpotqa/test.jsonl from the HotpotQA distractor dev samples (CC BY-SA 4.0).

Each record becomes {"id", "question", "context", "answer"}; the context is every paragraph as
"Title: sentences", paragraphs separated by a blank line. Records are de-duplicated by id, in
file order (the 53 first dev records, then the 100-record sample).
Run: python examples/hotpotqa/prepare.py [SHARED_DIR]
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared"
SOURCES = ("hotpot_dev_distractor_first53.json", "reflexion_hotpot_distractor_sample100.json")


def main() -> None:
    seen: set[str] = set()
    with open(HERE / "test.jsonl", "w", encoding="utf-8") as out:
        for name in SOURCES:
            for record in json.loads((SHARED / "data/hotpotqa" / name).read_text(encoding="utf-8")):
                if record["_id"] in seen:
                    continue
                seen.add(record["_id"])
                context = "\n\n".join(f"{title}: {''.join(sentences).strip()}" for title, sentences in record["context"])
                row = {"id": record["_id"], "question": record["question"], "context": context, "answer": record["answer"]}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
