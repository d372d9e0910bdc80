"""Wall time of `taskc compile specs/banking77.yaml` (interpreter start included) beside
`python -c pass`, both measured in this run. Target: under 1.5 s.

Run: python bench/compile.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        compile_cmd = [sys.executable, "-m", "taskc.cli", "compile", "specs/banking77.yaml", "--out", out]
        wall(compile_cmd, 1)  # warm the file cache
        base = wall([sys.executable, "-c", "pass"], args.runs)
        comp = wall(compile_cmd, args.runs)
    b, c = statistics.median(base), statistics.median(comp)
    print(f"python -c pass                      median {b * 1000:7.1f} ms  (min {min(base) * 1000:.1f})")
    print(f"taskc compile specs/banking77.yaml  median {c * 1000:7.1f} ms  (min {min(comp) * 1000:.1f})")
    print(f"ratio compile / bare interpreter    {c / b:.1f}x;  target < 1500 ms: {'PASS' if c < 1.5 else 'FAIL'}")


if __name__ == "__main__":
    main()
