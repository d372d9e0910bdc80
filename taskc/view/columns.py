"""A line-offset index and compact per-sample columns of one samples.jsonl, built in one pass.

The viewer filters and pages over these columns (numpy arrays, one entry per sample line) and
reads a sample's full record only when it is shown, by seeking to its line. A `Columns` value
remembers the file's size and mtime: when the file has only grown (a run being written), the new
lines are read and appended; when it was rewritten, it is read again from the start. A last line
without its newline is taken when it parses (and read again later), otherwise it is reported
as incomplete; a line that is not JSON is skipped and reported with its line number.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import msgspec
import numpy as np
import orjson
from msgspec.structs import astuple

MAX_VOCAB = 4096  # distinct outputs given a small code (labels, short answers); the rest share -2
TAIL = 64  # bytes before the read position that must be unchanged for an append-only update
NO_OUTPUT = -1
RARE_OUTPUT = -2


@dataclass(frozen=True)
class Columns:
    """Per-sample columns of one samples.jsonl (one entry per sample line, in file order)."""

    size: int = 0
    mtime_ns: int = -1
    consumed: int = 0  # bytes of whole lines read
    lines_read: int = 0  # line count of those bytes
    tail: bytes = b""
    confirmed: int = 0  # samples from whole lines; a sample past this one came from a partial line
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    repeat: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    error: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    invalid: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    cached: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    out_key: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    vocab: tuple[str, ...] = ()
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    partial: str | None = None
    unindexed: int = 0  # lines without an integer `index` (numbered by position instead)

    @property
    def n(self) -> int:
        """Number of samples."""
        return len(self.offsets)

    def score(self, metric: str | None) -> np.ndarray:
        """The scores of one metric (NaN where a sample has none)."""
        found = self.scores.get(metric) if metric else None
        return found if found is not None else np.full(self.n, np.nan)

    def output_text(self, position: int) -> str | None:
        """The canonical output text of a sample when it has a small code (labels), else None."""
        code = int(self.out_code[position])
        return self.vocab[code] if code >= 0 else None


class _Sample(msgspec.Struct):
    """The fields of a sample line the columns need; the rest of the line (inputs, messages hash,
    usage, details) is skipped by the decoder without building Python objects for it. A field
    missing from an older taskc's line is None."""

    index: Any = None
    repeat: Any = None
    error: Any = None
    valid: Any = None
    cached: Any = None
    latency_s: Any = None
    parsed: Any = None
    raw: Any = None
    scores: Any = None


_decode_sample = msgspec.json.Decoder(_Sample).decode
_NOT_AN_OBJECT = object()


def _load_lines(lines: list[bytes]) -> list[Any]:
    """Each line decoded into a `_Sample`; on the rare batch with a bad line, a per-line pass marks
    it: the decode error for a line that is not JSON, `_NOT_AN_OBJECT`, None for a blank line."""
    try:
        return [_decode_sample(line) for line in lines]
    except msgspec.DecodeError:
        pass
    out: list[Any] = []
    for line in lines:
        try:
            out.append(_decode_sample(line))
        except msgspec.ValidationError:  # valid JSON, but not an object
            out.append(_NOT_AN_OBJECT)
        except msgspec.DecodeError as exc:
            out.append(exc if line.strip() else None)
    return out


@lru_cache(maxsize=1 << 16)
def output_key(text: str) -> int:
    """A 64-bit key of an output text, the same in every process (columns may be built in worker
    processes, and str's hash() differs between processes)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little", signed=True)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _floats(values: list[Any]) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.asarray([_number(v) for v in values], dtype=np.float64)


def _output_text(error: Any, valid: Any, parsed: Any, raw: Any) -> str | None:
    """What two samples must share to agree: the parsed value (canonical JSON), or the raw text of an
    invalid output; None for a failed request."""
    if error:
        return None
    if valid is True or (type(valid) is not bool and parsed is not None):
        return parsed if type(parsed) is str else orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode()
    return "\x00invalid:" + (raw.strip() if isinstance(raw, str) else "")


BATCH = 2048  # lines parsed at a time: the parsed records of one batch are dropped before the next


class _Fields:
    """The column lists being filled, one batch of parsed records at a time."""

    def __init__(self, vocab: tuple[str, ...], start_n: int):
        self.index: list[int] = []
        self.repeat: list[int] = []
        self.error: list[bool] = []
        self.valid: list[bool] = []
        self.cached: list[bool] = []
        self.latency: list[Any] = []
        self.keys: list[int] = []
        self.codes: list[int] = []
        self.codes_of = {v: i for i, v in enumerate(vocab)}
        self.scores: dict[str, list[float]] = {}
        self.start_n = start_n
        self.unindexed = 0

    def extend(self, records: list[_Sample]) -> None:
        if not records:
            return
        n0 = len(self.index)
        index, repeat, error, valid, cached, latency, parsed, raw, scores = zip(*map(astuple, records))
        if not all(type(v) is int for v in index):
            fixed = []
            for k, v in enumerate(index):
                if type(v) is not int:
                    v, self.unindexed = self.start_n + n0 + k, self.unindexed + 1
                fixed.append(v)
            index = fixed
        self.index += index
        self.repeat += repeat if all(type(v) is int for v in repeat) else [v if type(v) is int else 0 for v in repeat]
        error = list(map(bool, error))
        self.error += error
        if not all(type(v) is bool for v in valid):  # older records: valid when something was parsed
            valid = [v if type(v) is bool else p is not None for v, p in zip(valid, parsed)]
        self.valid += [v and not e for v, e in zip(valid, error)]
        self.cached += map(bool, cached)
        self.latency += latency
        codes_of = self.codes_of
        texts = list(map(_output_text, error, valid, parsed, raw))
        codes = list(map(codes_of.get, texts))  # None: no output, or a text without a code yet
        for k in [k for k, code in enumerate(codes) if code is None]:
            text = texts[k]
            if text is None:
                codes[k] = NO_OUTPUT
                continue
            code = codes_of.get(text)
            if code is None and len(codes_of) < MAX_VOCAB and len(text) <= 200:
                code = codes_of[text] = len(codes_of)
            codes[k] = RARE_OUTPUT if code is None else code
        self.codes += codes
        self.keys += [0 if text is None else output_key(text) for text in texts]
        score_dicts = [d if type(d) is dict else {} for d in scores]
        names = {name for d in score_dicts for name in d}
        for name in sorted(names - self.scores.keys(), key=lambda k: next(i for i, d in enumerate(score_dicts) if k in d)):
            self.scores[name] = [math.nan] * n0
        for name, column in self.scores.items():
            column += [d.get(name, math.nan) for d in score_dicts]

    def arrays(self) -> dict[str, Any]:
        error = np.asarray(self.error, dtype=bool)
        cached = np.asarray(self.cached, dtype=bool)
        latency = _floats(self.latency) * 1000.0
        latency[error | cached] = np.nan
        return dict(
            index=np.asarray(self.index, dtype=np.int64), repeat=np.asarray(self.repeat, dtype=np.int64),
            error=error, invalid=~np.asarray(self.valid, dtype=bool) & ~error, cached=cached, latency_ms=latency,
            out_key=np.asarray(self.keys, dtype=np.int64), out_code=np.asarray(self.codes, dtype=np.int32),
            vocab=tuple(self.codes_of), scores={k: _floats(v) for k, v in self.scores.items()},
            unindexed=self.unindexed,
        )


def _chunk(data: bytes, base: int, first_line: int, start_n: int, vocab: tuple[str, ...]) -> dict[str, Any]:
    """Parse the whole lines of `data` (at file offset `base`) and a parsable partial last line."""
    lines = data.split(b"\n")
    rest = lines.pop()  # bytes after the last newline: b"" or a partial line
    whole = len(data) - len(rest)
    lines_read = len(lines)
    partial, took_partial = None, False
    where = f"line {first_line + lines_read + 1}"
    if rest.strip():
        try:
            took_partial = isinstance(orjson.loads(rest), dict)
        except orjson.JSONDecodeError:
            pass
        if took_partial:
            lines.append(rest)
            partial = f"{where} has no newline yet (the run may still be writing)"
        else:
            partial = f"{where} is incomplete (the run may still be writing it); showing the samples before it"
    starts = np.zeros(len(lines) + 1, np.int64)
    if lines:
        np.cumsum([len(line) + 1 for line in lines], out=starts[1:])
    fields = _Fields(vocab, start_n)
    problems: list[str] = []
    kept: list[int] = []
    for b in range(0, len(lines), BATCH):
        parsed = _load_lines(lines[b:b + BATCH])
        keep = [i for i, value in enumerate(parsed) if type(value) is _Sample]
        if len(keep) != len(parsed):
            for i, value in enumerate(parsed):
                if isinstance(value, Exception):
                    problems.append(f"line {first_line + b + i + 1}: not valid JSON ({value}); skipped")
                elif value is _NOT_AN_OBJECT:
                    problems.append(f"line {first_line + b + i + 1}: not a JSON object; skipped")
            parsed = [parsed[i] for i in keep]
        kept += [b + i for i in keep]
        fields.extend(parsed)
    rows = np.asarray(kept, dtype=np.int64)
    return dict(
        offsets=base + starts[rows], ends=base + starts[rows + 1] - 1, line=rows + first_line + 1,
        problems=problems, partial=partial, took_partial=took_partial, whole=whole, lines_read=lines_read,
        **fields.arrays(),
    )


def _cut(columns: Columns, n: int) -> Columns:
    """The first `n` samples of `columns` (drops a sample taken from a partial line)."""
    if n == columns.n:
        return columns
    return replace(
        columns, offsets=columns.offsets[:n], ends=columns.ends[:n], line=columns.line[:n],
        index=columns.index[:n], repeat=columns.repeat[:n], error=columns.error[:n],
        invalid=columns.invalid[:n], cached=columns.cached[:n], latency_ms=columns.latency_ms[:n],
        out_key=columns.out_key[:n], out_code=columns.out_code[:n],
        scores={k: v[:n] for k, v in columns.scores.items()},
    )


_ARRAYS = ("offsets", "ends", "line", "index", "repeat", "error", "invalid", "cached", "latency_ms", "out_key", "out_code")


def _join(old: Columns, new: dict[str, Any]) -> dict[str, Any]:
    out = {k: np.concatenate([getattr(old, k), new[k]]) if old.n else new[k] for k in _ARRAYS}
    n_new = len(new["offsets"])
    scores = {}
    for name in list(old.scores) + [k for k in new["scores"] if k not in old.scores]:
        before = old.scores.get(name, np.full(old.n, np.nan))
        scores[name] = np.concatenate([before, new["scores"].get(name, np.full(n_new, np.nan))])
    out.update(scores=scores, vocab=new["vocab"], unindexed=old.unindexed + new["unindexed"])
    return out


def read_columns(path: Path, previous: Columns | None = None) -> Columns:
    """The columns of `path`, reusing `previous` when the file is unchanged or only grew.
    Raises OSError when the file cannot be read."""
    stat = os.stat(path)
    if previous is not None and previous.size == stat.st_size and previous.mtime_ns == stat.st_mtime_ns:
        return previous
    base = Columns()
    with open(path, "rb") as f:
        if previous is not None and previous.consumed and stat.st_size >= previous.consumed:
            f.seek(previous.consumed - len(previous.tail))
            if f.read(len(previous.tail)) == previous.tail:
                base = _cut(previous, previous.confirmed)
        f.seek(base.consumed)
        data = f.read()
    new = _chunk(data, base.consumed, base.lines_read, base.n, base.vocab)
    joined = _join(base, new)
    n_new = len(new["offsets"])
    return Columns(
        size=base.consumed + len(data), mtime_ns=stat.st_mtime_ns, consumed=base.consumed + new["whole"],
        lines_read=base.lines_read + new["lines_read"], tail=(base.tail + data[:new["whole"]])[-TAIL:],
        confirmed=base.n + n_new - (1 if new["took_partial"] else 0),
        problems=base.problems + tuple(new["problems"]), partial=new["partial"], **joined)


class _Searched(msgspec.Struct):
    """The fields of a sample line that text search looks in."""

    inputs: Any = None
    raw: Any = None


_decode_searched = msgspec.json.Decoder(_Searched).decode


def _haystack(chunk: bytes) -> str:
    try:
        record = _decode_searched(chunk)
    except msgspec.DecodeError:  # the file changed under us, or not an object
        return ""
    parts = []
    if isinstance(record.inputs, dict):
        for value in record.inputs.values():
            parts.append(value if isinstance(value, str) else orjson.dumps(value).decode())
    if isinstance(record.raw, str):
        parts.append(record.raw)
    return "\n".join(parts).lower()


def haystacks(path: Path, columns: Columns) -> list[str]:
    """Lower-cased text the search box looks in, per sample: the input values and the raw output
    (read on the first search, not when the columns are built)."""
    with open(path, "rb") as f:
        data = f.read(columns.size)
    return [_haystack(data[start:end]) for start, end in zip(columns.offsets.tolist(), columns.ends.tolist())]


def read_records(path: Path, columns: Columns, positions: Iterable[int]) -> list[dict[str, Any] | None]:
    """The full records at `positions` (None for one that no longer parses: the file changed)."""
    positions = list(positions)
    out: list[dict[str, Any] | None] = []
    with open(path, "rb") as f:
        if len(positions) > 256:  # many: one read of the file instead of a seek per line
            data = f.read(columns.size)
            chunks = (data[columns.offsets[p]:columns.ends[p]] for p in positions)
        else:
            chunks = (_read_at(f, int(columns.offsets[p]), int(columns.ends[p])) for p in positions)
        for chunk in chunks:
            try:
                record = orjson.loads(chunk)
            except orjson.JSONDecodeError:
                record = None
            out.append(record if isinstance(record, dict) else None)
    return out


def _read_at(f, start: int, end: int) -> bytes:
    f.seek(start)
    return f.read(end - start)
