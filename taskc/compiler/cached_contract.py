"""What a contract loaded from the contract cache (`taskc.compiler.cached`) is made of: the
same values as a fresh compile's, with the train split read on first use, the spec parsed again
only when asked for, and the test split's messages as the compile rendered them."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from taskc.compiler.contract import Contract


class TrainPart:
    """The train split's file, read once on first access. Should it be gone or rewritten by
    another process meanwhile, the spec is compiled again, and used if it is still the same
    contract."""

    def __init__(self, path: Path, token: str, spec: Path, allow_outside: tuple, contract_id: str,
                 compile_spec: Callable[[Path, tuple], Contract]) -> None:
        self.path = path
        self.token = token
        self.spec = spec
        self.allow_outside = allow_outside
        self.contract_id = contract_id
        self._compile = compile_spec
        self._value: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self._value is None:
            try:
                with open(self.path, "rb") as handle:
                    token, value = pickle.load(handle)
                if token != self.token:
                    raise ValueError("another record")
            except Exception:  # noqa: BLE001 - recompile instead
                value = self._recompiled()
            self._value = value
        return self._value

    def _recompiled(self) -> dict[str, Any]:
        from taskc.errors import TaskcError

        fresh = self._compile(self.spec, self.allow_outside)
        if fresh.id != self.contract_id:
            raise TaskcError(f"{self.spec} or a file it names changed while taskc was running: run the command again")
        return {"splits": fresh.splits["train"], "gold": fresh.gold["train"],
                "row_databases": fresh.row_databases.get("train")}


class SplitMap(Mapping):
    """A per-split mapping (splits, gold, row databases) whose "train" entry is read on first use."""

    def __init__(self, eager: dict[str, Any], train: TrainPart | None, part: str) -> None:
        self._eager = dict(eager)
        self._train = train
        self._part = part

    def __getitem__(self, name: str) -> Any:
        if name in self._eager:
            return self._eager[name]
        if name == "train" and self._train is not None:
            value = self._train.get()[self._part]
            if value is not None:
                return value
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._eager or (name == "train" and self._train is not None)

    def __iter__(self) -> Iterator[str]:
        yield from self._eager
        if self._train is not None and "train" not in self._eager:
            yield "train"

    def __len__(self) -> int:
        return len(self._eager) + (1 if self._train is not None and "train" not in self._eager else 0)

    def __repr__(self) -> str:
        return f"SplitMap({list(self)})"


class SpecOnDemand:
    """Stands for the contract's `LoadedSpec`: the spec is parsed again (it is unchanged, its
    hash was checked) only when an attribute is asked for."""

    def __init__(self, path: Path, allow_outside: tuple[str | Path, ...] = ()) -> None:
        self.path = path
        self._allow_outside = allow_outside
        self._loaded = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_loaded", "_allow_outside"):
            raise AttributeError(name)
        if self._loaded is None:
            from taskc.spec.load import load_spec

            self._loaded = load_spec(self.path, self._allow_outside)
        return getattr(self._loaded, name)

    @property
    def base_dir(self) -> Path:
        """The spec's folder (as `LoadedSpec.base_dir`)."""
        return self.path.parent

    def __repr__(self) -> str:
        return f"SpecOnDemand({str(self.path)!r})"


@dataclass(frozen=True)
class RenderedMessages:
    """One split's chat messages as the compile rendered them: the distinct messages once, and
    for each row the indices of its messages and their hash."""

    split: str
    pool: tuple[tuple[str, str], ...]
    rows: tuple[tuple[int, ...], ...]
    hashes: tuple[str, ...]

    @classmethod
    def of(cls, contract: Contract, split: str) -> "RenderedMessages | None":
        """Render every row of `split` once (None for a split with extra message keys)."""
        from taskc.common.encoding import messages_hash

        if split not in contract.splits:
            return None
        index: dict[tuple[str, str], int] = {}
        rows, hashes = [], []
        for i in range(len(contract.splits[split].rows)):
            messages = contract.messages(split, i)
            if any(set(m) != {"role", "content"} for m in messages):
                return None
            rows.append(tuple(index.setdefault((m["role"], m["content"]), len(index)) for m in messages))
            hashes.append(messages_hash(messages))
        return cls(split, tuple(index), tuple(rows), tuple(hashes))

    def messages(self, index: int) -> list[dict[str, str]]:
        """Fresh dicts, as `Contract.messages` returns them."""
        pool = self.pool
        return [{"role": pool[j][0], "content": pool[j][1]} for j in self.rows[index]]


@dataclass(frozen=True)
class CachedContract(Contract):
    """A contract loaded from the cache: the same values as a fresh compile's, with the test
    split's messages as the compile rendered them (used while the body and the split are the
    very objects loaded, so a `dataclasses.replace` of either renders afresh)."""

    rendered: RenderedMessages | None = field(default=None, compare=False, repr=False)
    _origin: tuple = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.rendered is not None and not self._origin:
            object.__setattr__(self, "_origin", (self.body, self.splits.get(self.rendered.split)))

    def _prerendered(self, split: str) -> RenderedMessages | None:
        table = self.rendered
        if table is None or split != table.split or not self._origin:
            return None
        body, rows = self._origin
        if self.body is not body or self.splits.get(split) is not rows:
            return None
        return table

    def messages(self, split: str, index: int) -> list[dict[str, str]]:
        """As `Contract.messages`, from the compile's rendering where it has one."""
        table = self._prerendered(split)
        return table.messages(index) if table is not None else super().messages(split, index)

    def messages_digest(self, split: str, index: int, messages) -> str:
        """As `Contract.messages_digest`, from the compile's rendering where it has one."""
        table = self._prerendered(split)
        return table.hashes[index] if table is not None else super().messages_digest(split, index, messages)
