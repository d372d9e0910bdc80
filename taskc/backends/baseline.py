"""The `baseline` backend: nearest neighbour over the train split.

TF-IDF (`sublinear_tf`, word 1-2-grams) fitted on the train rows' rendered user text; each test
row answers the gold output of the train row with the highest cosine similarity to its last
user message; ties (and rows sharing no term with any train row) go to the lowest train index.
Settings: `train_texts`, `train_outputs` (same length). Batched: vectorised all at once.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from taskc.backends.base import Backend, BackendUnavailable, last_user_text
from taskc.common.encoding import compact_json
from taskc.runner.http import JsonClient
from taskc.runner.types import Request, Result

_CHUNK = 512


class BaselineBackend(Backend):
    """TF-IDF nearest-neighbour answers (see the module docstring)."""

    name = "baseline"
    batched = True
    chunk_size = 1024  # results (and Ctrl-C) chunk by chunk
    cacheable = False

    def __init__(self, train_texts: Sequence[str], train_outputs: Sequence[Any], model: str = "tfidf-1nn") -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(train_texts) != len(train_outputs):
            raise ValueError(f"{len(train_texts)} train texts but {len(train_outputs)} train outputs")
        if not train_texts:
            raise ValueError("the baseline backend needs at least one train row")
        self.model = model
        self.train_outputs = tuple(o if isinstance(o, str) else compact_json(o) for o in train_outputs)
        self._vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
        try:
            self._train = self._vectorizer.fit_transform(list(train_texts))
        except ValueError:  # empty vocabulary: every row answers train row 0
            self._train = None

    @classmethod
    def from_config(cls, config, contract) -> "BaselineBackend":
        """The contract's train split: each row's last user turn and its gold answer."""
        if "train" not in contract.splits:
            raise BackendUnavailable(f"the baseline backend answers from the train split, and {contract.name} has none")
        n = len(contract.splits["train"].rows)
        return cls(train_texts=[contract.user_message("train", i) for i in range(n)],
                   train_outputs=[contract.gold_text("train", i) for i in range(n)])

    def __repr__(self) -> str:
        return f"BaselineBackend(train_rows={len(self.train_outputs)})"

    def render(self, request: Request) -> dict[str, Any]:
        """What is compared: the last user message."""
        return {"text": last_user_text(request)}

    def nearest(self, texts: Sequence[str]) -> list[int]:
        """The index of the nearest train row for each text."""
        if self._train is None:
            return [0] * len(texts)
        out: list[int] = []
        for start in range(0, len(texts), _CHUNK):
            query = self._vectorizer.transform(list(texts[start : start + _CHUNK]))
            sims = (query @ self._train.T).toarray()  # rows are L2-normalised: this is cosine
            out.extend(int(i) for i in np.argmax(sims, axis=1))  # argmax takes the first maximum
        return out

    async def generate(self, requests: Sequence[Request], client: JsonClient | None,
                       payloads: Sequence[Any] | None = None) -> list[Result]:
        """All answers at once, in order."""
        picks = self.nearest([last_user_text(r) for r in requests])
        return [
            Result(r.index, r.repeat, raw=self.train_outputs[i], extra={"neighbour": i})
            for r, i in zip(requests, picks)
        ]

    async def generate_one(self, request: Request, client: JsonClient | None, payload: Any = None) -> Result:
        """One answer."""
        return (await self.generate([request], client))[0]
