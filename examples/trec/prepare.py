"""Build examples/trec/ from the TREC question-classification data (Li & Roth 2002).

Each source line `COARSE:fine question` becomes {"question", "coarse", "fine"} where `coarse` is
e.g. "NUM" and `fine` the unambiguous "NUM:date" (fine names like "other" recur under several
coarse classes, so the coarse prefix is kept). The question is kept as published (tokenized,
with spaces before punctuation). train_5500.label is ISO-8859-1, TREC_10.label ASCII; both are
written as UTF-8 JSON lines, in file order: train.jsonl (5,452), test.jsonl (500).
labels.json holds {"coarse": [6 labels], "fine": [50 labels]}, each sorted.
Deterministic and re-runnable.
Run: python examples/trec/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = (("train", "train_5500.label", "iso-8859-1"), ("test", "TREC_10.label", "ascii"))


def parse(line: str) -> dict:
    label, question = line.split(" ", 1)
    coarse, fine = label.split(":", 1)
    if not coarse or not fine or not question.strip():
        raise ValueError(f"bad TREC line: {line!r}")
    return {"question": question.strip(), "coarse": coarse, "fine": label}


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    coarse: set[str] = set()
    fine: set[str] = set()
    for split, name, encoding in SOURCES:
        text = (shared / "data/trec" / name).read_bytes().decode(encoding)
        rows = [parse(line) for line in text.splitlines() if line.strip()]
        coarse.update(r["coarse"] for r in rows)
        fine.update(r["fine"] for r in rows)
        with open(out / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    labels = {"coarse": sorted(coarse), "fine": sorted(fine)}
    (out / "labels.json").write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
