"""Build examples/docstring/{test,train}.jsonl from HumanEval code -> docstring pairs (MIT).

Each record keeps {"task_id", "entry_point", "code", "docstring"} as published. Split,
deterministic: a record goes to train when the sha256 of its task_id starts with a hex digit
below 4 (about a quarter), else to test; each split keeps the source order
(test 122, train 41 of 163). The licence is copied beside the data.
Run: python examples/docstring/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import hashlib
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = ("task_id", "entry_point", "code", "docstring")


def is_train(task_id: str) -> bool:
    return hashlib.sha256(task_id.encode("utf-8")).hexdigest()[0] in "0123"


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    source = shared / "data/docstring"
    records = [json.loads(line) for line in (source / "humaneval_code2docstring.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    splits: dict[str, list[dict]] = {"test": [], "train": []}
    for record in records:
        row = {k: record[k] for k in FIELDS}
        splits["train" if is_train(row["task_id"]) else "test"].append(row)
    for name, rows in splits.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "LICENSE_human-eval").write_bytes((source / "LICENSE_human-eval").read_bytes())


if __name__ == "__main__":
    main(sys.argv[1:])
