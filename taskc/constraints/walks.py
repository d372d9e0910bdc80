"""Random walks through a compiled constraint: the soundness probe and the mask-time benchmark.

At each step a uniformly random token among those the engine's mask allows is taken (EOS
included when allowed). Every token taken is one the mask allowed, so each completed walk is a
string a model could have been made to produce: validating walks (json.loads + jsonschema, label
membership, Lark + SQLite) tests that the constraint admits nothing invalid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .engines import MASK_WORDS, CompiledConstraint, Matcher, token_bytes
from .qwen_vocab import EOS_TOKEN_ID, SPECIAL_START_ID

_CLOSERS = set(b"\"')]};")
_LOOKAHEAD = 12  # candidate tokens tried per finishing step (twice as many when none closes)


@lru_cache(maxsize=1)
def _closer_words() -> np.ndarray:
    """Bitmask of tokens made only of closing delimiters (``"``, ``'``, ``)``, ``]``, ``}``,
    ``;``), used to finish long random walks: they never open a bracket."""
    bits = np.zeros(MASK_WORDS * 32, dtype=bool)
    for idx, raw in enumerate(token_bytes()[:SPECIAL_START_ID]):
        if raw and set(raw) <= _CLOSERS:
            bits[idx] = True
    return np.packbits(bits, bitorder="little").view(np.int32)


@lru_cache(maxsize=1)
def _single_closers() -> np.ndarray:
    """Ids of the one-byte closing-delimiter tokens (always tried when finishing a walk)."""
    table = token_bytes()
    return np.array([i for i in range(SPECIAL_START_ID) if len(table[i]) == 1 and table[i][0] in _CLOSERS])


@dataclass
class WalkResult:
    """Random walks: `texts` ended with EOS; `truncated` hit the caps without reaching it;
    `not_utf8` ended with EOS but their bytes are not UTF-8 (an unsound engine: a model could
    then emit text no JSON or SQL parser reads)."""

    texts: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    not_utf8: list[bytes] = field(default_factory=list)
    mask_us: list[float] = field(default_factory=list)
    tokens: int = 0

    def mask_percentiles(self) -> dict[str, float]:
        """p50 / p99 / max of the per-token mask computation time in microseconds."""
        if not self.mask_us:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        arr = np.asarray(self.mask_us)
        return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)), "max": float(arr.max())}


def _pick(words: np.ndarray, rng: np.random.Generator) -> int:
    """A uniformly random set bit of an int32 bitmask (-1 when none is set)."""
    counts = np.bitwise_count(words.view(np.uint32)).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return -1
    k = int(rng.integers(total))
    cum = np.cumsum(counts)
    w = int(np.searchsorted(cum, k, side="right"))
    k -= int(cum[w - 1]) if w else 0
    word = int(words.view(np.uint32)[w])
    for bit in range(32):
        if word >> bit & 1:
            if k == 0:
                return w * 32 + bit
            k -= 1
    raise AssertionError("unreachable")


def allowed_ids(words: np.ndarray) -> np.ndarray:
    """The token ids a packed 32-bit mask allows."""
    return np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little"))


def _finishing_token(m: Matcher, words: np.ndarray, rng: np.random.Generator) -> int:
    """A token that lets the walk end soon. Candidates: a sample of the allowed tokens made only
    of closing delimiters, or of all allowed tokens when there are none. One step of lookahead:
    a candidate after which EOS is allowed wins; else the closing candidate that leaves the
    fewest tokens allowed (a quote that closes a string rather than one inside it); else any."""
    closing = allowed_ids(words & _closer_words())
    if len(closing):
        single = closing[np.isin(closing, _single_closers())]
        pool = np.concatenate([single, rng.permutation(np.setdiff1d(closing, single))[:_LOOKAHEAD]])
    else:
        pool = rng.permutation(allowed_ids(words))[: 2 * _LOOKAHEAD]
    probe = np.zeros_like(words)
    eos_word, eos_bit = divmod(EOS_TOKEN_ID, 32)
    ending: list[int] = []
    best, best_count = -1, None
    for tok in pool:
        tok = int(tok)
        if tok == EOS_TOKEN_ID or not m.advance(tok):
            continue
        m.fill(probe)
        m.rollback(1)
        if int(probe[eos_word]) >> eos_bit & 1:
            ending.append(tok)
        count = int(np.bitwise_count(probe.view(np.uint32)).sum())
        if best_count is None or count < best_count:
            best, best_count = tok, count
    if ending:
        return ending[int(rng.integers(len(ending)))]
    if len(closing) and best >= 0:
        return best
    return int(pool[0]) if len(pool) else -1


def random_walk(compiled: CompiledConstraint, n: int, cap: int, seed: int = 0, finish: int | None = None) -> WalkResult:
    """`n` random walks through the compiled constraint, uniformly over the allowed tokens.

    A walk stops when it draws EOS. After `cap` tokens it switches to finishing: EOS whenever
    allowed, else a token chosen by `_finishing_token` (one step of lookahead, preferring
    closing delimiters); after `finish` more tokens (default `cap`) the walk is given up as
    truncated. Every token taken is one the mask allowed, so each completed text is a string a
    model could have been made to produce. `mask_us` times each mask computation of the walk
    proper (not the lookahead probes).
    """
    rng = np.random.default_rng(seed)
    finish = cap if finish is None else finish
    words = np.zeros(MASK_WORDS, dtype=np.int32)
    eos_word, eos_bit = divmod(EOS_TOKEN_ID, 32)
    out = WalkResult()
    for _ in range(n):
        m = compiled.matcher()
        ids: list[int] = []
        done = False
        while len(ids) < cap + finish:
            t0 = time.perf_counter()
            m.fill(words)
            out.mask_us.append((time.perf_counter() - t0) * 1e6)
            eos_ok = bool(int(words[eos_word]) >> eos_bit & 1)
            if len(ids) >= cap and eos_ok:
                done = True
                break
            tok = _finishing_token(m, words, rng) if len(ids) >= cap else _pick(words, rng)
            if tok < 0:
                break
            if tok == EOS_TOKEN_ID:
                done = True
                break
            if not m.advance(tok):
                raise RuntimeError(f"{compiled.engine} refused token {tok} its own mask allowed")
            ids.append(tok)
        out.tokens += len(ids)
        raw = b"".join(token_bytes()[i] for i in ids)
        if done:  # strict: a finished walk that is not UTF-8 is a soundness bug of the engine
            try:
                out.texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.not_utf8.append(raw)
        else:
            out.truncated.append(raw.decode("utf-8", errors="replace"))
    return out
