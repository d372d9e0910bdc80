"""Copy the git-assistant data (distil-gitara, MIT) from SHARED/data/git_assistant/, unchanged.

Files: train.jsonl (43), test.jsonl (116) with `question` and `answer` (a JSON string
`{"name", "parameters"}`); job_description.json (13 tools, OpenAI function format); LICENSE.
Deterministic: a byte-for-byte copy.
Run: python examples/git_assistant/prepare.py [SHARED_DIR] [OUT_DIR]
(SHARED_DIR defaults to $TASKC_SHARED or <repo>/../shared; OUT_DIR to this folder.)
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("train.jsonl", "test.jsonl", "job_description.json", "LICENSE")


def main(argv: list[str]) -> None:
    shared = Path(argv[0]) if argv else Path(os.environ.get("TASKC_SHARED") or HERE.parents[2] / "shared")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (out / name).write_bytes((shared / "data/git_assistant" / name).read_bytes())


if __name__ == "__main__":
    main(sys.argv[1:])
