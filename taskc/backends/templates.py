"""`generated/<task>/requests/`: what each backend sends for test example 0, as payload templates
(every row differs only in its messages). Rendered by the backends themselves, so the files
are exactly their `render` output."""

from __future__ import annotations

from typing import Any

from taskc.backends import get_backend
from taskc.compiler.artifacts import json_text
from taskc.constraints.lower import VLLM_ENGINE_CONFIG, to_vllm_structured_outputs, vllm_server_flags


def request_files(contract: Any, stamp: dict[str, str]) -> dict[str, str]:
    """`requests/vllm_offline.json`, `vllm_server.json`, `openai.json`, `anthropic.json`
    (none for a task without test rows)."""
    if not contract.splits["test"].rows:
        return {}
    request = contract.requests(limit=1)[0]
    note = "example 0 of the test split; every row differs only in its messages"
    engine = contract.body.get("engine") or {}
    config = engine.get("structured_outputs_config") or VLLM_ENGINE_CONFIG
    structured = to_vllm_structured_outputs(request.constraint, config.get("backend"))
    if request.constraint is not None and request.constraint.type == "json_schema" and "grammar" in structured:
        note += ("; structured_outputs.grammar is xgrammar's EBNF of the output schema in contract.json, with "
                 "its length-bounded strings lowered by taskc (xgrammar's own lowering drops JSON escapes)")
    files = {}
    offline = {
        "_generated": stamp,
        "note": note,
        "engine": {"structured_outputs_config": config},
        "messages": list(request.messages),
        "sampling_params": {**request.generation.as_dict(),
                            **({"structured_outputs": structured} if structured is not None else {})},
    }
    files["requests/vllm_offline.json"] = json_text(offline)
    server = get_backend("openai", model="MODEL", base_url="http://localhost:8000/v1", mode="vllm", api_key_env=None)
    files["requests/vllm_server.json"] = json_text(
        {"_generated": stamp, "note": note, "server_flags": vllm_server_flags(engine),
         "endpoint": "POST /v1/chat/completions", "body": server.render(request)}
    )
    openai = get_backend("openai", model="MODEL", base_url="http://localhost:8000/v1", mode="openai", api_key_env=None)
    files["requests/openai.json"] = json_text(
        {"_generated": stamp, "note": note, "endpoint": "POST /v1/chat/completions", "body": openai.render(request)}
    )
    anthropic = get_backend("anthropic", model="MODEL", base_url="http://localhost:8000", api_key_env=None)
    files["requests/anthropic.json"] = json_text(
        {"_generated": stamp, "note": note, "endpoint": "POST /v1/messages", "body": anthropic.render(request)}
    )
    return files


def compiled_files(contract: Any) -> dict[str, str]:
    """Everything `taskc compile` writes for a contract: the compiler's artifacts and the
    request templates (relative path -> text; pure)."""
    from taskc.compiler.artifacts import render_files

    return render_files(contract, request_files)
