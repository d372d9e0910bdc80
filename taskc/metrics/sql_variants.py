"""Generated variants of a SQLite database for test-suite accuracy (`test_suite_match`).

A variant has the real database's schema (its sqlite_master DDL: tables, indexes, views) and
random rows that respect column type affinity, PRIMARY KEY and UNIQUE constraints, and
FOREIGN KEY references (parents are filled first, in topological order, and child key values
are drawn from the parent's generated rows). A share of the values is sampled from the real
database's columns so that WHERE literals of real queries hit: every distinct value of a column
with up to `MAX_SAMPLES` of them, else `MAX_SAMPLES` values evenly spread over its sorted
distinct values (so that a large database is read in bounded memory, once for all variants).

Variants are deterministic given (database content, seed, index) and are cached as files under
`<tempdir>/taskc-test-suite/`, keyed by the database's sha256, the seed and the index.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import string
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from taskc.common.sqlite import read_only_uri

MIN_ROWS = 2
MAX_ROWS = 20
SAMPLE_P = 0.6
NULL_P = 0.05
RETRIES = 25
MAX_SAMPLES = 10_000
GENERATOR_VERSION = 2  # part of the cache key: bump whenever generation changes

_sha_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class _Column:
    name: str
    affinity: str
    notnull: bool
    samples: tuple


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[_Column, ...]
    unique_sets: tuple[tuple[str, ...], ...]
    pk: tuple[str, ...]
    fks: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (parent, from, to)


def file_sha256(path: str) -> str:
    """sha256 of a file (cached per path, size and mtime)."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    digest = _sha_cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _sha_cache[key] = digest
    return digest


def variant_paths(path: str, k: int, seed: int = 0, cache_dir: str | None = None) -> list[str]:
    """Paths of the `k` variants of the database at `path` for `seed`, built when missing."""
    digest = file_sha256(path)
    root = Path(cache_dir or os.path.join(tempfile.gettempdir(), "taskc-test-suite"))
    root.mkdir(parents=True, exist_ok=True)
    out = []
    schema = None
    for i in range(k):
        target = root / f"{digest[:24]}-g{GENERATOR_VERSION}-s{seed}-v{i}.sqlite"
        if not target.exists():
            tmp = root / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
            if tmp.exists():
                tmp.unlink()
            schema = schema or read_schema(path)
            _write_variant(schema, str(tmp),
                           random.Random(f"{digest}:{GENERATOR_VERSION}:{seed}:{i}"))
            os.replace(tmp, target)
        out.append(str(target))
    return out


def _affinity(decl: str) -> str:
    t = (decl or "").upper()
    if "INT" in t:
        return "int"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "text"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "real"
    return "any"


def _sort_key(v: object) -> tuple:
    return (type(v).__name__, v)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _samples(src: sqlite3.Connection, table: str, column: str) -> tuple:
    """The column's distinct non-NULL values, or MAX_SAMPLES of them evenly spread."""
    frm = f"FROM {_q(table)} WHERE {_q(column)} IS NOT NULL"
    n = src.execute(f"SELECT count(DISTINCT {_q(column)}) {frm}").fetchone()[0]
    cur = src.execute(f"SELECT DISTINCT {_q(column)} {frm}" +
                      (f" ORDER BY {_q(column)}" if n > MAX_SAMPLES else ""))
    if n <= MAX_SAMPLES:
        vals = [r[0] for r in cur]
    else:
        vals, step = [], -(-n // MAX_SAMPLES)
        for i, (v,) in enumerate(cur):
            if i % step == 0:
                vals.append(v)
    return tuple(sorted(vals, key=_sort_key))


def _read_schema(src: sqlite3.Connection) -> tuple[list[_Table], list[str], list[str]]:
    rows = src.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                       "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
    table_ddl = [r[2] for r in rows if r[0] == "table"]
    other_ddl = [r[2] for r in rows if r[0] in ("index", "view")]
    names = {r[1].lower(): r[1] for r in rows if r[0] == "table"}
    tables = []
    for lname in sorted(names):
        t = names[lname]
        info = src.execute(f"PRAGMA table_info({_q(t)})").fetchall()
        cols = []
        for _cid, cname, ctype, notnull, _dflt, _pk in info:
            cols.append(_Column(cname, _affinity(ctype), bool(notnull), _samples(src, t, cname)))
        pk = tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        uniques = [pk] if pk else []
        for idx in src.execute(f"PRAGMA index_list({_q(t)})").fetchall():
            if idx[2]:
                icols = tuple(r[2] for r in src.execute(f"PRAGMA index_info({_q(idx[1])})"))
                if icols and None not in icols and icols not in uniques:
                    uniques.append(icols)
        groups: dict[int, tuple[str, list[str], list]] = {}
        for fid, _seq, parent, frm, to, *_ in src.execute(
                f"PRAGMA foreign_key_list({_q(t)})").fetchall():
            g = groups.setdefault(fid, (names.get(parent.lower(), parent), [], []))
            g[1].append(frm)
            g[2].append(to)
        fks = tuple((p, tuple(f), tuple(to)) for p, f, to in
                    (groups[i] for i in sorted(groups)))
        tables.append(_Table(t, tuple(cols), tuple(uniques), pk, fks))
    return _resolve_fks(tables), table_ddl, other_ddl


def _resolve_fks(tables: list[_Table]) -> list[_Table]:
    """Fill implicit FK targets (the parent's primary key) and drop unresolvable ones."""
    by_name = {t.name: t for t in tables}
    out = []
    for t in tables:
        fks = []
        for parent, frm, to in t.fks:
            p = by_name.get(parent)
            if p is None:
                continue
            if any(c is None for c in to):
                if len(p.pk) != len(frm):
                    continue
                to = p.pk
            fks.append((parent, frm, to))
        out.append(_Table(t.name, t.columns, t.unique_sets, t.pk, tuple(fks)))
    return out


def topological(tables: list[_Table]) -> list[_Table]:
    """Tables ordered parents first (name order among equals; cycles broken by name)."""
    by_name = {t.name: t for t in tables}
    deps = {t.name: {p for p, _f, _t in t.fks if p != t.name and p in by_name} for t in tables}
    order: list[_Table] = []
    done: set[str] = set()
    while len(order) < len(tables):
        ready = sorted(n for n in deps if n not in done and deps[n] <= done)
        if not ready:
            ready = [min(n for n in deps if n not in done)]
        for n in ready:
            done.add(n)
            order.append(by_name[n])
    return order


def _random_value(col: _Column, rng: random.Random) -> object:
    nums = [v for v in col.samples if isinstance(v, (int, float)) and not isinstance(v, bool)]
    kind = col.affinity
    if kind == "any":
        kind = "int" if nums and all(isinstance(v, int) for v in nums) else (
            "real" if nums else "text")
    if kind == "int":
        lo, hi = (int(min(nums)), int(max(nums))) if nums else (0, 100)
        span = max(5, (hi - lo) // 2)
        return rng.randint(lo - span, hi + span)
    if kind == "real":
        lo, hi = (float(min(nums)), float(max(nums))) if nums else (0.0, 100.0)
        return round(rng.uniform(lo - 1, hi + 1), 2)
    texts = [v for v in col.samples if isinstance(v, str)]
    if texts and rng.random() < 0.5:
        words = rng.choice(texts).split() or ["x"]
        return rng.choice(words) + rng.choice(["", " " + rng.choice(string.ascii_letters)])
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(3, 10)))


def _value(col: _Column, rng: random.Random, in_pk: bool) -> object:
    if not in_pk and not col.notnull and rng.random() < NULL_P:
        return None
    if col.samples and rng.random() < SAMPLE_P:
        return rng.choice(col.samples)
    return _random_value(col, rng)


def _fill_table(dst: sqlite3.Connection, t: _Table, rng: random.Random,
                generated: dict[str, list[dict]]) -> None:
    names = [c.name for c in t.columns]
    insert = (f"INSERT INTO {_q(t.name)} ({', '.join(map(_q, names))}) "
              f"VALUES ({', '.join('?' for _ in names)})")
    pk = set(t.pk)
    seen: list[set] = [set() for _ in t.unique_sets]
    rows: list[dict] = []
    generated[t.name] = rows
    for _ in range(rng.randint(MIN_ROWS, MAX_ROWS)):
        for _attempt in range(RETRIES):
            row = {c.name: _value(c, rng, c.name in pk) for c in t.columns}
            for parent, frm, to in t.fks:
                parents = generated.get(parent) or []
                if parents:
                    prow = rng.choice(parents)
                    for f, c in zip(frm, to):
                        row[f] = prow.get(c)
                elif not pk.intersection(frm):
                    for f in frm:
                        row[f] = None
            keys = [tuple(row.get(c) for c in u) for u in t.unique_sets]
            if any(k in s for k, s in zip(keys, seen)):
                continue
            try:
                dst.execute(insert, [row[n] for n in names])
            except sqlite3.Error:
                continue
            for k, s in zip(keys, seen):
                s.add(k)
            rows.append(row)
            break


def read_schema(path: str) -> tuple[list[_Table], list[str], list[str]]:
    """What variants of the database at `path` are built from: tables (columns, keys,
    sampled values) and the DDL of tables and of indexes and views."""
    src = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        return _read_schema(src)
    finally:
        src.close()


def build_variant(path: str, out_path: str, rng: random.Random) -> None:
    """Write one variant of the database at `path` to `out_path` using `rng`."""
    _write_variant(read_schema(path), out_path, rng)


def _write_variant(schema: tuple[list[_Table], list[str], list[str]], out_path: str,
                   rng: random.Random) -> None:
    tables, table_ddl, other_ddl = schema
    dst = sqlite3.connect(out_path, isolation_level=None)
    try:
        dst.execute("BEGIN")
        for ddl in table_ddl:
            dst.execute(ddl)
        generated: dict[str, list[dict]] = {}
        for t in topological(tables):
            _fill_table(dst, t, rng, generated)
        for ddl in other_ddl:
            try:
                dst.execute(ddl)
            except sqlite3.Error:
                pass
        dst.execute("COMMIT")
    finally:
        dst.close()
