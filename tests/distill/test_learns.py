"""It really learns, on this machine: the tiny Qwen3 trained on 30 rows of a label task and of a
tool-call task, evaluated on those same 30 rows by a real vLLM engine through the vllm backend
(the contract's own requests, constrained decoding): near chance before, at least 0.8 after.
Memorizing them only works if the training sequences are the prompts inference sends, and the
test checks that directly too: the prompt token ids the engine reports for every row equal the
training prompt ids.

One engine serves the whole module (the machine is small): it starts on the untrained student
with LoRA enabled, scores "before", serves a LoRA adapter through the backend's `lora` setting,
then reloads its weights from each trained folder (`reload_weights`, vLLM's in-place loader, from
the published safetensors) to score "after". The recipe (`RECIPE`) is full fine-tuning: a tiny
random model's tied embeddings are too small for LoRA alone to move its logits far (measured in
bench/RESULTS.md), so LoRA is tested for what it must do here: merge exactly and serve in vLLM.
`TASKC_LEARN_SPECS=a.yaml,b.yaml` runs the same check on other specs (test split = train split).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.train]

RECIPE = {"method": "full", "epochs": 60.0, "learning_rate": 5e-3, "batch_size": 8}  # cosine schedule (default)


@pytest.fixture(scope="module")
def engine(student):
    """One in-process vLLM engine over the untrained student, LoRA enabled (rank up to 8)."""
    saved = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm import LLM

    from taskc.backends.vllm_local import shutdown_engine
    from taskc.testing import vllm_engine_kwargs

    llm = LLM(**vllm_engine_kwargs(student, max_model_len=1024, distributed_executor_backend="uni",
                                   enable_lora=True, max_lora_rank=8))
    yield llm
    shutdown_engine(llm)
    if saved is None:
        os.environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    else:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = saved


def run(contract, llm, model: Path, lora: Path | None = None) -> tuple[float, list]:
    """The test split through the vllm backend on `llm` (greedy): the first metric and the outputs."""
    from taskc.backends.vllm_local import VLLMBackend
    from taskc.evaluate.scoring import rescore

    backend = VLLMBackend(model=str(model), llm=llm, engine_settings=contract.body.get("engine", {}),
                          lora=str(lora) if lora else None)
    requests = contract.requests(generation={**contract.body["generation"], "temperature": 0.0})
    results = asyncio.run(backend.generate(requests, None))
    assert not [r.error for r in results if r.error]
    scored = rescore(contract, [{"index": r.index, "output": r.raw} for r in results])
    return scored["metrics"][contract.body["metrics"][0]["name"]], [r.raw for r in results]


def reload(llm, folder: Path) -> None:
    """Load a trained folder's weights into the running engine (and forget cached prefixes)."""
    llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
    llm.reset_prefix_cache()


def train_cli(spec: Path, student: Path, out: Path, cwd: Path, **settings) -> dict:
    from tests.support import taskc

    flags = {"method": "--method", "epochs": "--epochs", "learning_rate": "--lr", "batch_size": "--batch-size",
             "max_steps": "--max-steps", "lora_rank": "--lora-rank"}
    args = [x for k, v in settings.items() if k in flags for x in (flags[k], str(v))]
    proc = taskc("train", str(spec), "--student", str(student), "--out", str(out), "--no-progress", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "taskc-train.json").read_text())


def check_prompts_match_the_engine(contract, student: Path, llm) -> None:
    """The engine's own prompt token ids for every row equal the training sequence's prompt."""
    from vllm import SamplingParams

    from taskc.distill.settings import TrainSettings
    from taskc.distill.train import prepare

    prepared = prepare(contract, student, TrainSettings())
    rendered = [prepared.backend.render(r) for r in contract.requests(split="train")]
    outs = llm.chat([r["messages"] for r in rendered], SamplingParams(max_tokens=1), use_tqdm=False,
                    chat_template_kwargs=rendered[0]["chat_template_kwargs"])
    for seq, out in zip(prepared.sequences, outs):
        assert list(out.prompt_token_ids) == list(seq.prompt_ids), f"row {seq.index}"


def _specs(tasks) -> list[Path]:
    extra = [Path(p) for p in os.environ.get("TASKC_LEARN_SPECS", "").split(",") if p.strip()]
    only = os.environ.get("TASKC_LEARN_ONLY")  # "label" or "tool": one of the two built-in tasks
    return [tasks(kind) for kind in ("label", "tool") if only in (None, kind)] + extra


def test_the_student_memorizes_label_and_tool_call_rows_as_vllm_serves_them(engine, student, tasks, tmp_path):
    from taskc.compiler.build import compile_spec

    report = []
    for spec in _specs(tasks):
        contract = compile_spec(spec)
        check_prompts_match_the_engine(contract, student, engine)
        reload(engine, student)
        before, _ = run(contract, engine, student)
        started = time.perf_counter()
        record = train_cli(spec, student, tmp_path / f"{contract.name}-model", tmp_path, **RECIPE)
        reload(engine, tmp_path / f"{contract.name}-model")
        after, outputs = run(contract, engine, tmp_path / f"{contract.name}-model")
        report.append({"task": contract.name, "before": before, "after": after, "steps": record["steps"],
                       "final_loss": record["final_loss"], "train_wall_s": record["wall_s"],
                       "cli_wall_s": round(time.perf_counter() - started, 1)})
        print(json.dumps(report[-1]))
        labels = len(contract.output.labels) if contract.output.kind == "label" else None
        assert before <= (2.0 / labels if labels else 0.2), report[-1]
        assert after >= 0.8, (report[-1], outputs)
    reload(engine, student)


def test_a_lora_adapter_is_served_by_the_vllm_backend_as_trained(engine, student, tasks, tmp_path):
    """The adapter of a short LoRA run, served on the base through `lora`: the same greedy
    choices as the merged model under transformers, and not the base model's."""
    import torch
    from transformers import AutoModelForCausalLM

    from taskc.compiler.build import compile_spec
    from taskc.distill.settings import TrainSettings
    from taskc.distill.train import prepare

    spec = tasks("label")
    contract = compile_spec(spec)
    out = tmp_path / "lora-model"
    train_cli(spec, student, out, tmp_path, method="lora", max_steps=12, learning_rate=3e-2, lora_rank=8, batch_size=8)
    reload(engine, student)
    _, served = run(contract, engine, student, lora=out)
    _, base = run(contract, engine, student)
    prepared = prepare(contract, student, TrainSettings())
    labels = list(contract.output.labels)
    firsts = [prepared.tokenizer.encode(label, add_special_tokens=False)[0] for label in labels]
    assert len(set(firsts)) == len(labels)  # one token decides the label, so greedy = argmax over firsts
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    expected = []
    with torch.no_grad():
        for seq in prepared.sequences:
            logits = merged(torch.tensor([list(seq.prompt_ids)])).logits[0, -1]
            expected.append(labels[max(range(len(labels)), key=lambda j: logits[firsts[j]].item())])
    assert served == expected
    assert served != base
