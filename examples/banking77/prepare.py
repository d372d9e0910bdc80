"""Copy the Banking77 data (CC BY 4.0) from SHARED/data/banking77/ into this folder, unchanged.

Files: train.csv (10,003 rows), test.csv (3,080 rows), both `text,category`; categories.json (the
77 labels). Deterministic: a byte-for-byte copy.
Run: python examples/banking77/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("train.csv", "test.csv", "categories.json")


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (out / name).write_bytes((shared / "data/banking77" / name).read_bytes())


if __name__ == "__main__":
    main(sys.argv[1:])
