"""The static prompt prefix: the leading part of the rendered prompt that every row shares.

A server with prefix caching (vLLM's automatic prefix caching, OpenAI's and Anthropic's prompt
caching) computes it once. Messages are already ordered so that it comes first: system prompt,
format instructions, few-shot turns, then the row's own turns. For sql tasks whose prompt holds
`{{ schema }}`, the prefix is also reported per database (the questions of one database share it).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

SAMPLE_ROWS = 4096  # enough rows to find the shared prefix; bounded so compile stays fast


def chatml(messages: Sequence[dict[str, str]]) -> str:
    """The messages as a Qwen-style chat template renders them (what a vLLM server tokenizes)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def _common(texts: Sequence[str]) -> str:
    return os.path.commonprefix(list(texts)) if texts else ""


def static_prefix(messages_of: Callable[[int], list[dict[str, str]]], n_rows: int,
                  group_of: Callable[[int], str | None] | None = None) -> tuple[dict[str, Any], str]:
    """Describe the shared prefix over the first rows of a split (all of them up to SAMPLE_ROWS);
    returns the description (as the contract records it) and the prefix text itself."""
    rows = range(min(n_rows, SAMPLE_ROWS))
    rendered = [messages_of(i) for i in rows]
    texts = [chatml(m) for m in rendered]
    prefix = _common(texts)
    first = rendered[0] if rendered else []
    whole = 0
    while whole < len(first) and prefix.startswith(chatml(first[: whole + 1])):
        whole += 1
    out: dict[str, Any] = {"scope": "all rows", "messages": whole, "chars": len(prefix),
                           "sha256": hashlib.sha256(prefix.encode("utf-8")).hexdigest()}
    if group_of is not None:
        groups: dict[str | None, list[str]] = {}
        for i, text in zip(rows, texts):
            groups.setdefault(group_of(i), []).append(text)
        per = {str(k): len(_common(v)) for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}
        if any(v > len(prefix) for v in per.values()):
            out["per_database_chars"] = per
            out["scope"] = "per database"
    return out, prefix


def count_tokens(text: str) -> int | None:
    """Tokens of `text` in the real Qwen vocabulary, cached by content; None without the
    `grammars` extra. (Loading the 151k-entry vocabulary takes about a second; the cache keeps
    recompiles fast.)"""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    root = Path(os.environ.get("TASKC_CACHE") or Path.home() / ".cache" / "taskc").expanduser() / "prefix-tokens"
    cached = root / f"{digest}.json"
    try:
        return int(json.loads(cached.read_text())["tokens"])
    except (OSError, ValueError, KeyError):
        pass
    try:
        from tokenizers import Tokenizer

        from taskc.constraints.qwen_vocab import qwen_tokenizer_dir

        tokenizer = Tokenizer.from_file(str(qwen_tokenizer_dir() / "tokenizer.json"))
    except Exception:  # noqa: BLE001 - no tokenizer here: the count is optional
        return None
    tokens = len(tokenizer.encode(text, add_special_tokens=False).ids)
    try:
        root.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps({"tokens": tokens}))
    except OSError:
        pass
    return tokens
