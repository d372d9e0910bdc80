"""Whole commands: `taskc eval` vs lm-evaluation-harness on the same 3,080 banking77 requests.

Both tools run as a user runs them, one process per run, against the same local fake OpenAI
server (tests/fakes/latency_server.py: no delay, about 0.1 ms of CPU per request, in its own
process), concurrency 256, every test row once, samples written:

- `taskc eval specs/banking77.yaml --backend openai --base-url URL --concurrency 256 --repeats 1
  --no-cache` (the compiled contract comes from taskc's contract cache after the first run);
- `lm_eval --model local-chat-completions --apply_chat_template --log_samples` over a task
  written here from the compiled contract: the same CSV, the same system prompt (the task's
  description) and user text, the same sampling settings and `structured_outputs` choice list,
  generate_until scored by exact_match.

Before timing, both send 16 rows to a recording server and the chat messages are compared
(they must be identical). Then rounds alternate the order of the tools: `taskc eval` (contract
from the cache), lm-eval, a bare `python -c pass`, and `taskc eval` with the contract cache off
(compiling the spec, for comparison). Each run's wall time is from just before its process is
started to its exit, its CPU time the process's user+sys; the server's own clock
(CLOCK_MONOTONIC, the same as ours) gives each run's first request and last answer, so every run
splits into start-up / requests / tail. A probed `taskc eval` run (import hooks that note the
time at each stage) profiles start-up and tail; the scoring of 3,080 label answers is timed
in-process. The machine's load average is printed with every run: on a shared machine wall
times move with other jobs, CPU times much less.

lm-eval (0.4.x from PyPI) is installed into its own venv if missing (default .cache/lm-eval-venv,
ignored by git; never into .venv).

    .venv/bin/python bench/vs_lm_eval.py [--rounds 5] [--concurrency 256] [--lm-eval-venv DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = ROOT / "specs" / "banking77.yaml"
ANSWER = "card_arrival"  # a valid label: both tools score the rows whose gold it is
LM_EVAL = "lm-eval[api]>=0.4,<0.5"
TASK = "taskc_banking77"

# Run as `python -c PROBE <taskc args>`: taskc's own CLI, with import hooks noting the time at
# each stage (nothing is imported earlier than taskc would import it).
PROBE = r'''
import sys, time, json, os, importlib.machinery as _m
_marks = [("interpreter ready", time.monotonic(), time.process_time())]
def _mark(what):
    _marks.append((what, time.monotonic(), time.process_time()))
def _around(obj, name, before, after, is_async=False, once=True):
    real = getattr(obj, name)
    state = {"done": False}
    if is_async:
        async def wrapper(*a, **k):
            first = not state["done"]
            if first and before: _mark(before)
            try:
                return await real(*a, **k)
            finally:
                if first and after: _mark(after)
                state["done"] = once
    else:
        def wrapper(*a, **k):
            first = not state["done"]
            if first and before: _mark(before)
            try:
                return real(*a, **k)
            finally:
                if first and after: _mark(after)
                state["done"] = once
    setattr(obj, name, wrapper)
def _patch_cli(m):
    _around(m, "_compile_all", "cli parsed", "contract ready")
def _patch_run(m):
    _around(m, "plan", None, "requests planned")
    _around(m.RunContext, "http", "HTTP stack import starts", "HTTP stack ready")
    _around(m, "summarise", "summary starts", "summary built")
    _around(m, "evaluate_async", None, "summary.json written", is_async=True)
def _patch_engine(m):
    _around(m, "run_requests", "runner starts", "runner returned", is_async=True)
def _patch_eval_cli(m):
    _around(m, "eval_command", "eval modules imported", "eval_command returned")
_PATCH = {"taskc.cli": _patch_cli, "taskc.evaluate.run": _patch_run, "taskc.runner.engine": _patch_engine,
          "taskc.evaluate.cli": _patch_eval_cli}
class _Hook:
    def find_spec(self, name, path=None, target=None):
        if name not in _PATCH:
            return None
        spec = _m.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        real = spec.loader.exec_module
        def exec_module(module, real=real, name=name):
            real(module)
            _PATCH[name](module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Hook())
def _dump():
    with open(os.environ["TASKC_PROBE_OUT"], "w") as f:
        json.dump(_marks, f)
import atexit
atexit.register(_dump)
_exit = sys.exit
def _sys_exit(*a):
    _mark("sys.exit (interpreter shutdown starts)")
    _exit(*a)
sys.exit = _sys_exit
sys.argv = ["taskc"] + sys.argv[1:]
import taskc.cli
_mark("taskc.cli imported (typer)")
taskc.cli.main()
'''


# -- lm-eval --------------------------------------------------------------------------------------


def ensure_lm_eval(venv: Path) -> Path:
    """The lm_eval executable of `venv`, installing lm-eval 0.4.x there first if missing."""
    exe = venv / "bin" / "lm_eval"
    if exe.exists():
        return exe
    print(f"installing {LM_EVAL} into {venv} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", LM_EVAL], check=True)
    if not exe.exists():
        raise SystemExit(f"lm-eval installed but {exe} is missing")
    return exe


def lm_eval_task(contract, folder: Path) -> Path:
    """An lm-eval task YAML equivalent to the spec: same data file, prompts, settings, metric.
    (JSON is YAML; the system prompt is the task's description, kept from Jinja by `raw`.)"""
    body = contract.body
    assert body["output"]["kind"] == "label" and list(body["inputs"]) == ["text"], "written for banking77-like specs"
    first = contract.messages("test", 0)
    system = first[0]["content"]
    assert first[0]["role"] == "system" and all(contract.messages("test", i)[0]["content"] == system for i in (1, 2))
    columns = body["data"]["test"]["columns"]
    generation = body["generation"]
    constraint = body["constraint"]
    task = {
        "task": TASK,
        "dataset_path": "csv",
        "dataset_kwargs": {"data_files": {"test": str(contract.splits["test"].path)}},
        "test_split": "test",
        "output_type": "generate_until",
        "description": "{% raw %}" + system + "{% endraw %}",
        "doc_to_text": "{{" + columns.get("text", "text") + "}}",
        "doc_to_target": "{{" + columns.get("answer", "answer") + "}}",
        "target_delimiter": "",
        "generation_kwargs": {"until": [], "max_gen_toks": generation.get("max_tokens", 24),
                              "temperature": generation.get("temperature", 0), "do_sample": False,
                              "structured_outputs": {"choice": constraint["choices"]}},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "num_fewshot": 0,
        "metadata": {"version": 1.0},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{TASK}.yaml"
    path.write_text(json.dumps(task, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def lm_eval_command(exe: Path, base_url: str, concurrency: int, tasks: Path, out: Path, limit: int | None = None) -> list[str]:
    cmd = [str(exe), "--model", "local-chat-completions",
           "--model_args", f"model=m,base_url={base_url}/chat/completions,num_concurrent={concurrency},"
                           "max_retries=1,tokenized_requests=False,timeout=60",
           "--tasks", TASK, "--include_path", str(tasks), "--apply_chat_template",
           "--output_path", str(out), "--log_samples", "--batch_size", "1"]
    return cmd + (["--limit", str(limit)] if limit else [])


def lm_eval_env(venv: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HOME=str(venv.parent / "lm-eval-hf"), TOKENIZERS_PARALLELISM="false")
    env.pop("PYTHONPATH", None)
    return env


def lm_eval_score(out: Path) -> tuple[float, int]:
    (results,) = sorted(out.rglob("results_*.json"))[-1:]
    data = json.loads(results.read_text())
    n = data["n-samples"][TASK]["effective"]
    return data["results"][TASK]["exact_match,none"], n


# -- taskc ----------------------------------------------------------------------------------------


def taskc_args(base_url: str, concurrency: int, out: Path, limit: int | None = None) -> list[str]:
    args = ["eval", str(SPEC), "--backend", "openai", "--model", "m", "--base-url", base_url,
            "--concurrency", str(concurrency), "--repeats", "1", "--no-cache", "--no-progress", "--out", str(out)]
    return args + (["--limit", str(limit)] if limit else [])


def taskc_command(base_url: str, concurrency: int, out: Path, limit: int | None = None) -> list[str]:
    return [sys.executable, "-m", "taskc.cli", *taskc_args(base_url, concurrency, out, limit)]


def warm_contract_cache() -> bool:
    """Compile banking77 into taskc's contract cache unless it is there (as `taskc eval` runs
    from ROOT see it); False when it had to be compiled (another engineer edited taskc)."""
    code = ("import sys; from taskc.compiler.cached import compile_cached, is_cached; "
            f"sys.exit(0 if is_cached(compile_cached({str(SPEC)!r})) else 3)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def taskc_score(out: Path) -> tuple[float, int]:
    (summary,) = out.rglob("summary.json")
    data = json.loads(summary.read_text())
    return data["metrics"]["exact_match"]["mean"], data["n"]


# -- the same messages ----------------------------------------------------------------------------


def check_same_messages(exe: Path, venv: Path, tasks: Path, rows: int = 16) -> None:
    """Both tools send `rows` rows to a recording fake; their chat messages must be identical."""
    from tests.fakes.provider_server import FakeProvider

    sent = {}
    for tool in ("taskc", "lm-eval"):
        with FakeProvider(default_answer=ANSWER) as fake, tempfile.TemporaryDirectory() as out:
            if tool == "taskc":
                cmd, env = taskc_command(fake.openai_base_url, 8, Path(out), rows), None
            else:
                cmd, env = lm_eval_command(exe, fake.openai_base_url, 8, tasks, Path(out), rows), lm_eval_env(venv)
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
            bodies = [r.body for r in fake.requests]
        sent[tool] = bodies
    ours = sorted(json.dumps(b["messages"], sort_keys=True) for b in sent["taskc"])
    theirs = sorted(json.dumps(b["messages"], sort_keys=True) for b in sent["lm-eval"])
    if ours != theirs:
        raise SystemExit(f"the tools send different messages:\n taskc  : {ours[0][:300]}\n lm-eval: {theirs[0][:300]}")
    same_constraint = all(b.get("structured_outputs") == sent["taskc"][0].get("structured_outputs") for b in sent["lm-eval"])
    print(f"same chat messages in both tools' requests: yes ({len(ours)} rows compared); "
          f"same structured_outputs: {'yes' if same_constraint else 'NO'}; body keys: "
          f"taskc {sorted(sent['taskc'][0])}, lm-eval {sorted(sent['lm-eval'][0])}")


# -- timing ---------------------------------------------------------------------------------------


def server_times(record_dir: Path, since: float, until: float) -> tuple[int, float | None, float | None]:
    """(requests, first arrival, last answer) the server recorded between `since` and `until`."""
    time.sleep(0.3)  # the server flushes its records every 0.1 s
    n, first, last = 0, None, None
    for path in record_dir.glob("worker-*.jsonl"):
        for line in path.read_text().splitlines():
            if not line:
                continue
            _, t_in, _, _, t_out, _, _ = json.loads(line)
            if since <= t_in <= until:
                n += 1
                first = t_in if first is None else min(first, t_in)
                last = t_out if last is None else max(last, t_out)
    return n, first, last


def timed(cmd: list[str], record_dir: Path, env=None) -> dict:
    """Run `cmd` to its end; wall time and the server's view of its requests."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}")
    n, first, last = server_times(record_dir, start, end)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    run = {"wall": end - start, "cpu": cpu, "requests": n, "load1": os.getloadavg()[0]}
    if first is not None:
        run.update(startup=first - start, sending=last - first, tail=end - last)
    return run


def probe_taskc(base_url: str, concurrency: int, record_dir: Path) -> list[tuple[str, float, float | None]]:
    """One probed `taskc eval` run: (stage, ms since the process was started, CPU ms of the
    process by then: unlike wall time, little changed by other jobs on the machine)."""
    with tempfile.TemporaryDirectory() as out, tempfile.NamedTemporaryFile(suffix=".json") as marks:
        env = dict(os.environ, TASKC_PROBE_OUT=marks.name)
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", PROBE, *taskc_args(base_url, concurrency, Path(out))], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        end = time.monotonic()
        stages = [tuple(m) for m in json.loads(Path(marks.name).read_text())]
    _, first, last = server_times(record_dir, start, end)
    stages += [("first request at the server", first, None), ("last answer at the server", last, None),
               ("process exit", end, None)]
    return sorted(((name, (t - start) * 1000, cpu * 1000 if cpu is not None else None) for name, t, cpu in stages),
                  key=lambda s: s[1])


def import_profile(base_url: str, concurrency: int) -> list[tuple[str, float]]:
    """Self import time by top-level package (ms) of one `taskc eval` run (`-X importtime`)."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "taskc.cli",
                               *taskc_args(base_url, concurrency, Path(out))], cwd=ROOT, capture_output=True, text=True)
    by: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:"):].split("|")
        name = name.strip()
        top = ".".join(name.split(".")[:2]) if name.startswith("taskc.") else name.split(".")[0]
        by[top] = by.get(top, 0.0) + int(self_us) / 1000
    return sorted(by.items(), key=lambda kv: -kv[1])


def scoring_time(answer: str) -> tuple[float, int]:
    """Seconds to validate and score 3,080 label answers (Scorer.sample each, then aggregate)."""
    from taskc.compiler.cached import compile_cached
    from taskc.evaluate.scoring import Scorer
    from taskc.runner.types import Result, Usage

    contract = compile_cached(SPEC)
    requests = contract.requests()
    results = [Result(index=r.index, repeat=r.repeat, raw=answer, usage=Usage(200, 3, 0), latency_s=0.01) for r in requests]
    best = float("inf")
    for _ in range(5):
        scorer = Scorer(contract)
        t0 = time.perf_counter()
        samples = [scorer.sample(q, r) for q, r in zip(requests, results)]
        scorer.aggregate(samples)
        best = min(best, time.perf_counter() - t0)
    return best, len(samples)


def median(values):
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--lm-eval-venv", type=Path, default=ROOT / ".cache" / "lm-eval-venv")
    parser.add_argument("--skip-check", action="store_true", help="skip the same-messages check")
    args = parser.parse_args()

    from taskc.compiler.cached import compile_cached

    exe = ensure_lm_eval(args.lm_eval_venv)
    version = subprocess.run([str(args.lm_eval_venv / "bin" / "python"), "-c",
                              "from importlib.metadata import version; print(version('lm_eval'))"],
                             capture_output=True, text=True).stdout.strip()
    contract = compile_cached(SPEC)
    work = Path(tempfile.mkdtemp(prefix="vs-lm-eval-"))  # run folders of both tools; removed at the end
    try:
        compare(args, exe, version, contract, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(args, exe: Path, version: str, contract, work: Path) -> None:
    """The check, the rounds, the probe and the printed figures."""
    from tests.fakes.latency_server import LatencyServer

    tasks = lm_eval_task(contract, work / "tasks")
    env = lm_eval_env(args.lm_eval_venv)
    if not args.skip_check:
        check_same_messages(exe, args.lm_eval_venv, tasks)

    runs: dict[str, list[dict]] = {"taskc": [], "lm-eval": [], "python -c pass": [], "taskc, compiling": []}
    scores: dict[str, set] = {"taskc": set(), "lm-eval": set()}
    with LatencyServer(delays_ms=[0.0], answer=ANSWER, metrics=False) as server:
        url = server.base_url
        record_dir = server.record_dir

        def run(tool: str, counted: bool, round_no: int) -> None:
            out = work / f"{tool.replace(' ', '_')}-{round_no}-{time.monotonic_ns()}"
            if tool == "taskc, compiling":
                result = timed(taskc_command(url, args.concurrency, out), record_dir,
                               env=dict(os.environ, TASKC_CONTRACT_CACHE="0"))
            elif tool == "taskc":
                if not warm_contract_cache():
                    print(f"round {round_no}  (taskc's source changed since the last run: contract compiled again "
                          "before this run)", flush=True)
                result = timed(taskc_command(url, args.concurrency, out), record_dir)
                scores["taskc"].add(taskc_score(out))
            elif tool == "lm-eval":
                result = timed(lm_eval_command(exe, url, args.concurrency, tasks, out), record_dir, env=env)
                scores["lm-eval"].add(lm_eval_score(out))
            else:
                result = timed([sys.executable, "-c", "pass"], record_dir)
            if tool != "python -c pass" and result["requests"] != 3080:  # every row sent once, nothing retried
                raise SystemExit(f"{tool}: the server saw {result['requests']} requests, not 3080")
            if counted:
                runs[tool].append(result)
                parts = (f"  start-up {result['startup']:6.3f} s  requests {result['sending']:6.3f} s  tail {result['tail']:6.3f} s"
                         if "startup" in result else "")
                print(f"round {round_no}  {tool:17s} {result['wall']:7.3f} s  cpu {result['cpu']:6.2f} s{parts}  "
                      f"load1 {result['load1']:.2f}", flush=True)

        print(f"cpus={os.cpu_count()} load1={os.getloadavg()[0]:.2f} lm-eval {version} python {sys.version.split()[0]} "
              f"concurrency={args.concurrency} server=latency_server (no delay, answer {ANSWER!r})", flush=True)
        run("taskc", False, 0)  # warm-ups: page cache, lm-eval's dataset cache, taskc's contract cache
        run("lm-eval", False, 0)
        for r in range(1, args.rounds + 1):
            order = ["taskc", "lm-eval", "python -c pass", "taskc, compiling"]
            order = order if r % 2 else order[::-1]
            for tool in order:
                run(tool, True, r)
        warm_contract_cache()
        stages = probe_taskc(url, args.concurrency, record_dir)
        imports = import_profile(url, args.concurrency)
    score_s, score_n = scoring_time(ANSWER)

    ours, theirs, bare, compiling = runs["taskc"], runs["lm-eval"], runs["python -c pass"], runs["taskc, compiling"]
    ratios = [b["wall"] / a["wall"] for a, b in zip(ours, theirs)]
    print()
    print(f"{'(seconds)':22s}{'wall median':>12s}{'min':>8s}{'max':>8s}{'cpu':>7s}{'start-up':>10s}{'requests':>10s}"
          f"{'tail':>8s}{'req/s':>8s}")
    for name, rs in (("lm-eval " + version, theirs), ("taskc eval", ours), ("taskc eval, compiling", compiling),
                     ("python -c pass", bare)):
        walls = [r["wall"] for r in rs]
        line = f"{name:22s}{median(walls):12.3f}{min(walls):8.3f}{max(walls):8.3f}{median([r['cpu'] for r in rs]):7.2f}"
        if rs and "startup" in rs[0]:
            line += (f"{median([r['startup'] for r in rs]):10.3f}{median([r['sending'] for r in rs]):10.3f}"
                     f"{median([r['tail'] for r in rs]):8.3f}{3080 / median(walls):8.0f}")
        print(line)
    ratio = median([r["wall"] for r in theirs]) / median([r["wall"] for r in ours])
    print(f"ratio of whole-command wall times (lm-eval / taskc): median {ratio:.1f}x, per round "
          f"{', '.join(f'{x:.1f}' for x in ratios)}   goal >= 10x: {'MET' if ratio >= 10 else 'MISSED'}")
    cpu_ratio = median([r["cpu"] for r in theirs]) / median([r["cpu"] for r in ours])
    print(f"ratio of CPU times (user+sys of each command, less moved by other jobs): median {cpu_ratio:.1f}x")
    startup = median([r["startup"] for r in ours])
    print(f"taskc start-up to first request: median {startup * 1000:.0f} ms (min {min(r['startup'] for r in ours) * 1000:.0f}); "
          f"python -c pass: median {median([r['wall'] for r in bare]) * 1000:.0f} ms   goal < 500 ms: "
          f"{'MET' if startup < 0.5 else 'MISSED'}")
    print(f"scoring {score_n} label answers: {score_s * 1000:.1f} ms (best of 5)   goal < 100 ms: {'MET' if score_s < 0.1 else 'MISSED'}")
    print(f"scores: taskc {sorted(scores['taskc'])}  lm-eval {sorted(scores['lm-eval'])}  (exact_match, n)")
    print(f"load average during the rounds: {min(r['load1'] for rs in runs.values() for r in rs):.2f}-"
          f"{max(r['load1'] for rs in runs.values() for r in rs):.2f}")
    print("\ntaskc eval, one probed run: wall ms since the process was started (+ since the stage before), "
          "and the process's CPU ms by then")
    previous = 0.0
    for name, at, cpu in stages:
        print(f"  {at:8.1f}  (+{at - previous:7.1f})  cpu {'-' if cpu is None else f'{cpu:7.1f}':>7s}  {name}")
        previous = at
    print("\ntaskc eval imports, self time by package (ms, one run under -X importtime, which inflates them):")
    print("  " + ", ".join(f"{name} {ms:.0f}" for name, ms in imports[:14]))


if __name__ == "__main__":
    main()
