"""Build examples/ecommerce/{test,train}.csv from the E-commerce text sample (Gautam 2019).

The source csv has no header and columns `label,text`; the output csv files have the header
`text,label` (UTF-8, `\n` line ends, minimal quoting). Split, deterministic and stratified:
within each label, rows are ordered by the sha256 of their text and the first round(3/7 of
them) go to train; everything else is test. Of 35 rows: test 20, train 15 (Household 6/4,
Clothing & Accessories 6/4, Electronics 5/4, Books 3/3); each split keeps the source order.
labels.json lists the 4 labels.
Run: python examples/ecommerce/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import csv
import hashlib
import io
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = ["Household", "Books", "Electronics", "Clothing & Accessories"]


def write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["text", "label"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    text = (shared / "data/ecommerce/ecommerce_sample.csv").read_text(encoding="utf-8")
    rows = [{"text": r[1].strip(), "label": r[0]} for r in csv.reader(io.StringIO(text)) if r]
    unknown = {r["label"] for r in rows} - set(LABELS)
    if unknown:
        raise ValueError(f"unexpected labels: {sorted(unknown)}")
    train: set[int] = set()
    for label in LABELS:
        members = [i for i, r in enumerate(rows) if r["label"] == label]
        members.sort(key=lambda i: hashlib.sha256(rows[i]["text"].encode("utf-8")).hexdigest())
        train.update(members[: round(len(members) * 3 / 7)])
    write_csv(out / "test.csv", [r for i, r in enumerate(rows) if i not in train])
    write_csv(out / "train.csv", [r for i, r in enumerate(rows) if i in train])
    (out / "labels.json").write_text(json.dumps(LABELS, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
