"""Grammar engines on the real Qwen vocabulary: compile time and per-token mask time.

For each seed constraint (banking77 labels, git_assistant and home_control tool calls, a
pii_redaction object schema, the text2sql grammar of each of the 10 databases, and one with
string literals bounded to 64 characters, as for random-weight models) and each engine
(xgrammar, llguidance; outlines-core where it applies) this measures:

- compile: a fresh compile, no cache (xgrammar ``cache_enabled=False``; llguidance = grammar
  conversion + matcher construction; outlines-core = ``Index`` build), best of `--repeat`,
  wall ms and CPU ms (``process_time``: steadier on a shared, loaded machine);
- first mask: the first ``fill`` after compiling (llguidance builds masks lazily);
- mask p50 / p99: per-token mask time over seeded random walks (uniform over allowed tokens);
  "warm": the same walks again (llguidance caches the masks of states it has seen; xgrammar
  recomputes the context-dependent part of every mask).

Targets: compile < 100 ms, mask p99 < 100 us. The baseline measured in the same run is
outlines-core: each constraint shows outlines-core's compile time over the fastest engine's.

Run: ``python bench/grammar.py [--walks 40] [--sql-walks 10] [--no-outlines] [--json out.json]``
(TASKC_SHARED: shared data folder, default <repo>/../shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from taskc.constraints.engines import ENGINES, get_engine  # noqa: E402
from taskc.constraints.walks import random_walk  # noqa: E402
from taskc.constraints.ir import Constraint  # noqa: E402
from taskc.constraints.sql_grammar import sql_grammar, sqlite_tables  # noqa: E402

DATA = Path(os.environ.get("TASKC_SHARED", REPO.parent / "shared")) / "data"
PII_TYPES = ("PERSON STREET_ADDRESS GPE ORGANIZATION DATE_TIME PHONE_NUMBER EMAIL_ADDRESS CREDIT_CARD "
             "IBAN_CODE NRP TITLE ZIP_CODE AGE US_SSN IP_ADDRESS DOMAIN_NAME US_DRIVER_LICENSE").split()  # fmt: skip


def tool_call(tools: list[dict]) -> Constraint:
    """The tool_call constraint as the compiler builds it (anyOf of name + parameters)."""
    return Constraint.json(
        {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"name": {"const": t["name"]}, "parameters": t["parameters"]},
                    "required": ["name", "parameters"],
                    "additionalProperties": False,
                }
                for t in tools
            ]
        }
    )


def _obj(props: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


def constraints() -> list[tuple[str, Constraint]]:
    """The benchmarked constraints, named."""
    labels = tuple(json.loads((DATA / "banking77/categories.json").read_text()))
    out = [("banking77 (77 labels)", Constraint("choice", choices=labels))]
    doc = json.loads((DATA / "git_assistant/job_description.json").read_text())
    out.append(("git_assistant (13 tools)", tool_call([t.get("function", t) for t in doc["tools"]])))
    rooms = ("living_room", "bedroom", "kitchen", "bathroom", "office", "hallway")
    temperature = {"type": "integer", "minimum": 60, "maximum": 80}
    home = [
        {"name": "toggle_lights", "parameters": _obj({"room": _enum(*rooms), "state": _enum("on", "off")}, ["state"])},
        {"name": "set_thermostat", "parameters": _obj({"temperature": temperature, "mode": _enum("heat", "cool", "auto")}, ["temperature"])},
        {"name": "intent_unclear", "parameters": _obj({"reason": _enum("ambiguous", "off_topic", "incomplete")}, ["reason"])},
    ]  # fmt: skip
    out.append(("home_control (3 tools)", tool_call(home)))
    entity = _obj({"value": {"type": "string"}, "entity_type": _enum(*PII_TYPES)}, ["value", "entity_type"])
    pii = _obj({"redacted_text": {"type": "string"}, "entities": {"type": "array", "items": entity}}, ["redacted_text", "entities"])
    out.append(("pii_redaction (object)", Constraint.json(pii)))
    for db in sorted(p.name for p in (DATA / "text2sql/databases").iterdir()):
        tables = sqlite_tables(DATA / f"text2sql/databases/{db}/{db}.sqlite")
        out.append((f"sql {db}", Constraint("grammar", grammar=sql_grammar(tables))))
    singer = sqlite_tables(DATA / "text2sql/databases/concert_singer/concert_singer.sqlite")
    out.append(("sql concert_singer str<=64", Constraint("grammar", grammar=sql_grammar(singer, max_string=64))))
    return out


def measure(engine_name: str, c: Constraint, repeat: int, walks: int, cap: int) -> dict:
    """Compile `repeat` times (best kept), then walk; returns the figures."""
    engine = get_engine(engine_name)
    walls, cpus, compiled = [], [], None
    for _ in range(repeat):
        cpu0 = time.process_time()
        compiled = engine.compile(c)
        cpus.append((time.process_time() - cpu0) * 1000)
        walls.append(compiled.compile_ms)
    import numpy as np

    words = np.zeros((151936 + 31) // 32, dtype=np.int32)
    t0 = time.perf_counter()
    compiled.matcher().fill(words)
    first_us = (time.perf_counter() - t0) * 1e6
    res = random_walk(compiled, walks, cap, seed=0)
    stats = res.mask_percentiles()
    warm = random_walk(compiled, walks, cap, seed=0).mask_percentiles()  # same walks again
    return {
        "compile_ms": min(walls),
        "compile_cpu_ms": min(cpus),
        "first_mask_us": first_us,
        "mask_p50_us": stats["p50"],
        "mask_p99_us": stats["p99"],
        "warm_p50_us": warm["p50"],
        "warm_p99_us": warm["p99"],
        "masks": len(res.mask_us),
        "walks_done": len(res.texts),
        "walks_not_utf8": len(res.not_utf8),  # an unsound engine: see tests/constraints
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--walks", type=int, default=40, help="random walks per JSON/choice constraint and engine")
    ap.add_argument("--sql-walks", type=int, default=10, help="random walks per SQL grammar and engine")
    ap.add_argument("--repeat", type=int, default=3, help="compiles per constraint (best kept)")
    ap.add_argument("--no-outlines", action="store_true", help="skip outlines-core (seconds per index)")
    ap.add_argument("--only", default="", help="substring filter on constraint names")
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args(argv)

    engines = [e for e in ENGINES if not (args.no_outlines and e == "outlines-core")]
    setup = {}
    for name in engines:
        t0 = time.perf_counter()
        get_engine(name).warm_up()
        setup[name] = (time.perf_counter() - t0) * 1000
    print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC  python {platform.python_version()}  load {os.getloadavg()[0]:.1f}")
    print("# one-off vocabulary setup (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in setup.items()))
    head = (f"{'constraint':26} {'engine':13} {'compile ms':>10} {'cpu ms':>7} {'1st mask':>8} "
            f"{'p50 us':>7} {'p99 us':>7} {'warm p50':>8} {'warm p99':>8} {'masks':>6}")
    print(head)
    results: dict[str, dict] = {}
    for cname, c in constraints():
        if args.only and args.only not in cname:
            continue
        row: dict[str, dict] = {}
        for ename in engines:
            if get_engine(ename).supports(c):
                continue
            walks = args.sql_walks if c.type == "grammar" else args.walks
            repeat = 1 if ename == "outlines-core" else args.repeat
            walks = min(walks, 10) if ename == "outlines-core" else walks
            r = row[ename] = measure(ename, c, repeat, walks, cap=48)
            print(f"{cname[:26]:26} {ename:13} {r['compile_ms']:10.1f} {r['compile_cpu_ms']:7.1f} {r['first_mask_us']:8.0f} "
                  f"{r['mask_p50_us']:7.1f} {r['mask_p99_us']:7.0f} {r['warm_p50_us']:8.1f} {r['warm_p99_us']:8.0f} "
                  f"{r['masks']:6d}" + (f"  {r['walks_not_utf8']} walk(s) ended in bytes that are not UTF-8"
                                         if r["walks_not_utf8"] else ""), flush=True)
        fastest = min(row[e]["compile_ms"] for e in row if e != "outlines-core")
        if "outlines-core" in row:
            print(f"{'':26} {'ratio':13} outlines-core compile / fastest engine = {row['outlines-core']['compile_ms'] / fastest:,.0f}x")
        results[cname] = row
    summary = {}
    for ename in engines:
        comps = [r[ename]["compile_ms"] for r in results.values() if ename in r]
        p99s = [r[ename]["mask_p99_us"] for r in results.values() if ename in r]
        warm = [r[ename]["warm_p99_us"] for r in results.values() if ename in r]
        if comps:
            summary[ename] = {"compile_ms_median": statistics.median(comps), "compile_ms_max": max(comps),
                              "mask_p99_us_max": max(p99s), "warm_p99_us_max": max(warm)}  # fmt: skip
            print(f"# {ename}: compile median {statistics.median(comps):.1f} ms, max {max(comps):.1f} ms; "
                  f"mask p99 max {max(p99s):.0f} us (warm {max(warm):.0f} us)")
    if args.json:
        args.json.write_text(json.dumps({"setup_ms": setup, "results": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
