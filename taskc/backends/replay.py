"""Offline backends: `replay` (predictions from a JSONL file) and `gold` (the gold answers).

replay: each line `{"index": i, "output": "<raw>", "repeat": r}` (`repeat` optional: a line
without it answers every repeat of row i; an `output` that is not a string is written back as
compact JSON). A row with no line becomes `Result(error="no prediction for row i")`.
gold: `get_backend("gold", gold={0: "...", 1: {...}})`, index -> gold text (or object).
Both are batched, need no HTTP and bypass the cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from taskc.backends.base import Backend, BackendUnavailable
from taskc.common.encoding import compact_json
from taskc.runner.http import JsonClient
from taskc.runner.types import Request, Result


def _text(value: Any) -> str:
    return value if isinstance(value, str) else compact_json(value)


class ReplayBackend(Backend):
    """Answers from a predictions file (settings: `path`)."""

    name = "replay"
    batched = True
    cacheable = False

    def __init__(self, path: str | Path, model: str = "replay") -> None:
        self.path = Path(path)
        self.model = model
        self._exact: dict[tuple[int, int], str] = {}
        self._any: dict[int, str] = {}
        try:
            fh = self.path.open(encoding="utf-8")
        except OSError as exc:
            raise BackendUnavailable(f"cannot read the predictions file {self.path}: {exc.strerror}") from None
        with fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    index, output = int(row["index"]), row["output"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise BackendUnavailable(f"{self.path}:{lineno}: not a prediction line ({exc})") from None
                if row.get("repeat") is None:
                    self._any[index] = _text(output)
                else:
                    self._exact[(index, int(row["repeat"]))] = _text(output)

    def __repr__(self) -> str:
        return f"ReplayBackend(path={str(self.path)!r})"

    def render(self, request: Request) -> dict[str, Any]:
        """What is looked up: the row and repeat."""
        return {"index": request.index, "repeat": request.repeat}

    def answer(self, request: Request) -> Result:
        """The recorded prediction for one request, or an error result."""
        key = (request.index, request.repeat)
        raw = self._exact.get(key, self._any.get(request.index))
        if raw is None:
            return Result(request.index, request.repeat, raw=None, error=f"no prediction for row {request.index}", latency_s=0.0)
        return Result(request.index, request.repeat, raw=raw, latency_s=0.0)

    @classmethod
    def from_config(cls, config, contract) -> "ReplayBackend":
        """The predictions file is `predictions:` in models.yaml, else the model id."""
        return cls(path=config.predictions or config.model)

    async def generate(self, requests: Sequence[Request], client: JsonClient | None,
                       payloads: Sequence[Any] | None = None) -> list[Result]:
        """All answers at once, in order."""
        return [self.answer(r) for r in requests]

    async def generate_one(self, request: Request, client: JsonClient | None, payload: Any = None) -> Result:
        """One answer."""
        return self.answer(request)


class GoldBackend(ReplayBackend):
    """Answers each row with its gold output (settings: `gold`, index -> text or object)."""

    name = "gold"

    def __init__(self, gold: Mapping[int, Any], model: str = "gold") -> None:  # noqa: D107
        self.model = model
        self.path = Path("-")
        self._exact = {}
        self._any = {int(i): _text(v) for i, v in gold.items() if v is not None}

    @classmethod
    def from_config(cls, config, contract) -> "GoldBackend":
        """Every test row's gold answer, from the contract."""
        n = len(contract.splits["test"].rows)
        return cls(gold={i: contract.gold_text("test", i) for i in range(n)})

    def __repr__(self) -> str:
        return f"GoldBackend(rows={len(self._any)})"

    def answer(self, request: Request) -> Result:
        """The gold answer for one request, or an error result."""
        raw = self._any.get(request.index)
        if raw is None:
            return Result(request.index, request.repeat, raw=None, error=f"no gold answer for row {request.index}")
        return Result(request.index, request.repeat, raw=raw)
