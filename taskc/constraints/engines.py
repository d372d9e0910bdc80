"""Real grammar engines over the real Qwen vocabulary: compile, check gold text, random walks.

Three engines, each behind the same small interface (`get_engine(name)`):

- ``xgrammar`` (what vLLM uses; every constraint type),
- ``llguidance`` (every constraint type),
- ``outlines-core`` (choice, json_schema, regex; it has no context-free grammars).

`CompiledConstraint.accepts(text)` tokenizes the canonical text with the Qwen tokenizer, feeds
the matcher token by token and finally requires end-of-sequence (``<|im_end|>``) to be allowed,
which is what "the model may stop here" means. `walks.random_walk` samples, at each
step, a uniformly random token among those the mask allows (EOS included when allowed): every
completed walk is a string the engine would let a model produce, so validating walks tests the
constraint's soundness. Per-process caches hold each engine's vocabulary setup (about 1 s each
on an idle core for llguidance, xgrammar and outlines-core), so each is paid once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .ir import Constraint
from .qwen_vocab import EOS_TOKEN_ID, QWEN_VOCAB_SIZE, SPECIAL_START_ID, load_qwen_tokenizer

ENGINES = ("xgrammar", "llguidance", "outlines-core")
MASK_WORDS = (QWEN_VOCAB_SIZE + 31) // 32
_ROLLBACK = 4  # tokens a matcher can take back (the random walk's one-token lookahead)


@lru_cache(maxsize=1)
def token_bytes() -> tuple[bytes, ...]:
    """The bytes of every token id below `QWEN_VOCAB_SIZE` (b"" for the padding ids)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tok = load_qwen_tokenizer()
    decoder = {v: k for k, v in bytes_to_unicode().items()}
    out = [b""] * QWEN_VOCAB_SIZE
    for piece, idx in tok.get_vocab().items():
        if idx >= SPECIAL_START_ID:
            out[idx] = piece.encode()
        else:
            out[idx] = bytes(decoder[ch] for ch in piece)
    return tuple(out)


def encode(text: str) -> list[int]:
    """Token ids of `text` under the Qwen tokenizer (no special tokens added)."""
    return load_qwen_tokenizer().encode(text, add_special_tokens=False)


def decode(ids: list[int]) -> str:
    """Text of token ids (strict UTF-8: a walk that ends inside a character raises)."""
    table = token_bytes()
    return b"".join(table[i] for i in ids).decode("utf-8")


@dataclass
class Acceptance:
    """Whether a text is accepted; if not, where: `position` (char offset of the rejected
    token, or len(text) when only the end was refused) and `token_index` (None for the end)."""

    ok: bool
    position: int | None = None
    token_index: int | None = None
    reason: str = ""


class Matcher:
    """One engine's matcher state over the Qwen vocabulary (the same API for every engine)."""

    def reset(self) -> None:
        """Back to the start of the constraint."""

    def advance(self, token: int) -> bool:
        """Take `token`; False (and an unusable state until `reset`) when it is not allowed."""
        raise NotImplementedError

    def fill(self, words: np.ndarray) -> None:
        """Write the allowed-token bitmask (int32 words, bit i = token i) into `words`."""

    def accept_eos(self) -> bool:
        """Whether the output may end here (end-of-sequence is taken when it may)."""
        raise NotImplementedError

    def rollback(self, n: int) -> None:
        """Take back the last `n` tokens (at most a few)."""


class CompiledConstraint:
    """A constraint compiled by one engine; `compile_ms` is the wall time the compile took."""

    def __init__(self, engine: str, constraint: Constraint, compile_ms: float, factory: Any):
        self.engine = engine
        self.constraint = constraint
        self.compile_ms = compile_ms
        self._factory = factory
        self._matcher: Matcher | None = None

    def matcher(self) -> Matcher:
        """The (reset) matcher of this compiled constraint."""
        if self._matcher is None:
            self._matcher = self._factory()
        else:
            self._matcher.reset()
        return self._matcher

    def check(self, text: str) -> Acceptance:
        """Feed `text`'s Qwen tokens one by one, then end-of-sequence."""
        ids = encode(text)
        m = self.matcher()
        table = token_bytes()
        consumed = b""
        for i, tok in enumerate(ids):
            if not m.advance(tok):
                pos = len(consumed.decode("utf-8", errors="ignore"))
                return Acceptance(False, pos, i, f"token {table[tok]!r} refused")
            consumed += table[tok]
        if not m.accept_eos():
            return Acceptance(False, len(text), None, "end of sequence refused")
        return Acceptance(True)

    def accepts(self, text: str) -> tuple[bool, int | None]:
        """(ok, rejected_at): rejected_at is the char offset of the refused token, or len(text)
        when the text is a valid prefix but may not end there; None when accepted."""
        res = self.check(text)
        return res.ok, res.position


# --- engines ---------------------------------------------------------------------------------


class _XgrMatcher(Matcher):
    def __init__(self, ctx: Any):
        import xgrammar as xgr

        self._m = xgr.GrammarMatcher(ctx, override_stop_tokens=[EOS_TOKEN_ID])
        self._buf = np.zeros((1, MASK_WORDS), dtype=np.int32)

    def reset(self) -> None:
        self._m.reset()

    def advance(self, token: int) -> bool:
        return bool(self._m.accept_token(token))

    def fill(self, words: np.ndarray) -> None:
        self._m.fill_next_token_bitmask(self._buf, 0)
        words[:] = self._buf[0]

    def accept_eos(self) -> bool:
        return bool(self._m.accept_token(EOS_TOKEN_ID)) and self._m.is_terminated()

    def rollback(self, n: int) -> None:
        self._m.rollback(n)


class _LlgMatcher(Matcher):
    def __init__(self, grammar: str):
        import llguidance

        self._pristine = llguidance.LLMatcher(llguidance_tokenizer(), grammar, log_level=0)
        if self._pristine.is_error():
            raise ValueError(f"llguidance: {self._pristine.get_error()}")
        self._m = self._pristine.deep_copy()
        self._buf = np.zeros((1, MASK_WORDS), dtype=np.int32)

    def reset(self) -> None:
        # an llguidance matcher never leaves an error state (and reset() after EOS is not
        # documented), so every use starts from a copy of the untouched one
        self._m = self._pristine.deep_copy()

    def advance(self, token: int) -> bool:
        return bool(self._m.consume_token(token))

    def fill(self, words: np.ndarray) -> None:
        from llguidance.numpy import fill_next_token_bitmask

        fill_next_token_bitmask(self._m, self._buf, 0)
        words[:] = self._buf[0]

    def accept_eos(self) -> bool:
        return self._m.is_accepting() and bool(self._m.consume_token(EOS_TOKEN_ID))

    def rollback(self, n: int) -> None:
        self._m.rollback(n)


class _OcMatcher(Matcher):
    def __init__(self, index: Any):
        from outlines_core import Guide

        self._g = Guide(index, max_rollback=_ROLLBACK)

    def reset(self) -> None:
        self._g.reset()

    def advance(self, token: int) -> bool:
        try:
            self._g.advance(token, False)
        except Exception:
            return False
        return True

    def fill(self, words: np.ndarray) -> None:
        self._g.write_mask_into(words.ctypes.data, words.size, 4)

    def accept_eos(self) -> bool:
        return bool(self._g.is_finished())

    def rollback(self, n: int) -> None:
        self._g.rollback_state(n)


@lru_cache(maxsize=1)
def _xgr_compiler() -> Any:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(
        load_qwen_tokenizer(), vocab_size=QWEN_VOCAB_SIZE, stop_token_ids=[EOS_TOKEN_ID]
    )
    return xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)


@lru_cache(maxsize=1)
def llguidance_tokenizer() -> Any:
    import llguidance.hf

    return llguidance.hf.from_tokenizer(load_qwen_tokenizer(), n_vocab=QWEN_VOCAB_SIZE, eos_token=EOS_TOKEN_ID)


@lru_cache(maxsize=1)
def _oc_vocabulary() -> Any:
    from outlines_core import Vocabulary

    table: dict[bytes, list[int]] = {}
    for idx, raw in enumerate(token_bytes()[:SPECIAL_START_ID]):
        if raw:
            table.setdefault(raw, []).append(idx)
    return Vocabulary(EOS_TOKEN_ID, table)


class GrammarEngine:
    """One engine: `supports` says why not (or None), `compile` builds a `CompiledConstraint`."""

    def __init__(self, name: str):
        if name not in ENGINES:
            raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
        self.name = name

    def supports(self, c: Constraint) -> str | None:
        """None when this engine can compile `c`, else the reason it cannot."""
        if self.name == "outlines-core" and c.type == "grammar":
            return "outlines-core has no context-free grammars"
        return None

    def warm_up(self) -> None:
        """Pay the one-off vocabulary setup now (so compile timings exclude it)."""
        token_bytes()
        {"xgrammar": _xgr_compiler, "llguidance": llguidance_tokenizer, "outlines-core": _oc_vocabulary}[self.name]()

    def compile(self, c: Constraint) -> CompiledConstraint:
        """Compile `c` with the Qwen vocabulary; raises ValueError if unsupported or invalid."""
        from . import lower

        reason = self.supports(c)
        if reason:
            raise ValueError(reason)
        self.warm_up()
        t0 = time.perf_counter()
        if self.name == "xgrammar":
            ctx = lower.to_xgrammar_grammar(c, _xgr_compiler())
            factory: Any = lambda: _XgrMatcher(ctx)  # noqa: E731
        elif self.name == "llguidance":
            import llguidance

            grammar = lower.to_llguidance_grammar(c)
            probe = llguidance.LLMatcher(llguidance_tokenizer(), grammar, log_level=0)
            if probe.is_error():
                raise ValueError(f"llguidance: {probe.get_error()}")
            factory = lambda: _LlgMatcher(grammar)  # noqa: E731
        else:
            from outlines_core import Index

            index = Index(lower.to_outlines_core_regex(c), _oc_vocabulary())
            factory = lambda: _OcMatcher(index)  # noqa: E731
        return CompiledConstraint(self.name, c, (time.perf_counter() - t0) * 1000, factory)


def get_engine(name: str) -> GrammarEngine:
    """The engine called `name` (one of `ENGINES`)."""
    return GrammarEngine(name)
