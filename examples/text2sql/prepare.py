"""Copy the Spider dev subset (CC BY-SA 4.0) from SHARED/data/text2sql/, unchanged.

Files: dev.jsonl (484 questions: `db_id`, `question`, `query`), tables.json (Spider's schema
format) and databases/<db_id>/{<db_id>.sqlite, schema.sql} for the 10 databases.
Deterministic: a byte-for-byte copy (databases in sorted order).
Run: python examples/text2sql/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    source = shared / "data/text2sql"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("dev.jsonl", "tables.json"):
        (out / name).write_bytes((source / name).read_bytes())
    for db in sorted(p for p in (source / "databases").iterdir() if p.is_dir()):
        target = out / "databases" / db.name
        target.mkdir(parents=True, exist_ok=True)
        for name in (f"{db.name}.sqlite", "schema.sql"):
            (target / name).write_bytes((db / name).read_bytes())


if __name__ == "__main__":
    main(sys.argv[1:])
