"""A read-only SQLite sandbox for scoring generated SQL, and result fingerprints.

Every database is opened through the URI `file:<path>?mode=ro&immutable=1`, with extension
loading off, a length limit on values, and an authorizer that allows only reading: SELECT,
READ, RECURSIVE and FUNCTION (except load_extension and file-touching functions). Everything
else is denied at prepare time, before anything runs: INSERT/UPDATE/DELETE, CREATE/DROP/ALTER,
ATTACH/DETACH (also what VACUUM and VACUUM INTO ask for), PRAGMA, transactions and savepoints,
ANALYZE, REINDEX and virtual tables.

Results of any size are compared in bounded memory: rows are streamed in small chunks and
folded into a fingerprint (`taskc.metrics.sql_digest`), never kept. A query's time limit `timeout_s` is CPU
time spent inside SQLite by the scoring thread, so a busy machine does not fail a correct
query; the wall time inside SQLite is capped too, at `WALL_FACTOR` times the limit. A progress
handler interrupts the query past either; the Python time spent digesting rows is charged to
neither. A single long C call (`printf('%.*c', 2e9, 'x')`) never reaches the progress handler:
only the worker pool (`taskc.metrics.sql_pool`) bounds it, by ending the worker; the hook set
by `set_query_hook` tells the worker's watchdog each query's limits.

Connections are cached per (database path, thread) and reused; gold fingerprints are cached
per (database, gold query) in an in-process LRU dict.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

# normalize_rows and results_match stay importable from here (the rule, on rows in memory)
from taskc.common.sqlite import read_only_uri
from taskc.metrics.sql_digest import ResultDigest, normalize_rows, results_match  # noqa: F401

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_MAX_ROWS = 10_000  # the former row cap; the option is accepted and has no effect
MAX_VALUE_LENGTH = 10_000_000
GOLD_CACHE_SIZE = 4096
WALL_FACTOR = 4.0
_PROGRESS_OPS = 2000  # SQLite VM steps between two looks at the clocks
_CHUNK_BYTES = 1 << 20  # rows fetched per chunk adapt to keep a chunk's text near this size
_FIRST_CHUNK = 8
_MAX_CHUNK = 1024
_PAUSE_ROWS = 64  # digesting a smaller chunk costs microseconds: charged, the clocks run on

_ALLOWED = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                      getattr(sqlite3, "SQLITE_RECURSIVE", 33)})
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit",
                               "fts3_tokenizer", "sqlite_dbpage"})
_ACTION_NAMES = {getattr(sqlite3, "SQLITE_" + n): n for n in (
    "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER "
    "CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX "
    "DROP_TEMP_TABLE DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA "
    "READ SELECT TRANSACTION UPDATE ATTACH DETACH ALTER_TABLE REINDEX ANALYZE CREATE_VTABLE "
    "DROP_VTABLE FUNCTION SAVEPOINT RECURSIVE").split() if hasattr(sqlite3, "SQLITE_" + n)}

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.S)
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|"
                     r"/\*.*?\*/|[()]|[A-Za-z_][A-Za-z0-9_$]*", re.S)

QueryHook = Callable[["tuple[float, float] | None", "dict | None"], None]
_query_hook: QueryHook | None = None


@dataclass(frozen=True)
class QueryResult:
    """A query's fingerprint (`count` rows, `digest`), or `error` ("denied: ...",
    "timeout after Xs", "error: ..."). `ordered` is set by `run_gold` when the query has a
    top-level ORDER BY; the digest is then of the row sequence, else of the row multiset.
    `truncated`: the query was stopped once it had more rows than asked for (no digest)."""

    count: int | None
    digest: object = None
    error: str | None = None
    ordered: bool = False
    truncated: bool = False  # stopped after `stop_after` rows: it has more than that


def set_query_hook(hook: QueryHook | None) -> None:
    """Call `hook((cpu_s_left, wall_s_left), detail_if_killed)` when a query starts (with the
    detail to report should it be killed), `hook((cpu_s_left, wall_s_left), None)` before each
    further SQLite call (the clocks stop between them) and `hook(None, None)` when it ends.
    The pool's workers arm their watchdog with it."""
    global _query_hook
    _query_hook = hook


def clean_sql(text: str) -> str:
    """The SQL in a prediction: inside a ``` fence if there is one, trimmed, without the
    trailing `;`s."""
    m = _FENCE.search(text)
    if m:
        text = m.group(1)
    text = text.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def has_top_level_order_by(sql: str) -> bool:
    """Whether the query has ORDER BY outside any parentheses (strings and comments skipped)."""
    depth = 0
    prev = ""
    for m in _TOKENS.finditer(sql):
        tok = m.group(0)
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif depth == 0 and (tok[0].isalpha() or tok[0] == "_"):
            word = tok.upper()
            if word == "BY" and prev == "ORDER":
                return True
            prev = word
    return False


class Sandbox:
    """One read-only, authorizer-guarded connection to a SQLite file."""

    def __init__(self, path: str):
        self.path = path
        uri = read_only_uri(path)
        self._denied: str | None = None
        self._cpu_end = self._wall_end = 0.0
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        if hasattr(self.conn, "enable_load_extension"):
            self.conn.enable_load_extension(False)
        if hasattr(self.conn, "setlimit"):
            self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_LENGTH)
            self.conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self.conn.set_authorizer(self._authorize)
        self.conn.set_progress_handler(self._progress, _PROGRESS_OPS)

    def _authorize(self, action: int, arg1, arg2, _db, _trigger) -> int:
        if action in _ALLOWED:
            if action != sqlite3.SQLITE_FUNCTION or str(arg2).lower() not in _DENIED_FUNCTIONS:
                return sqlite3.SQLITE_OK
        what = _ACTION_NAMES.get(action, str(action))
        target = arg2 if action == sqlite3.SQLITE_FUNCTION else arg1
        what = f"{what} {target}" if target else what
        if self._denied is None:
            self._denied = what
        elif what not in self._denied and len(self._denied) < 200:
            self._denied += ", " + what
        return sqlite3.SQLITE_DENY

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._wall_end or time.thread_time() > self._cpu_end \
            else 0

    def _start(self, cpu_left: float, wall_left: float) -> None:
        self._cpu_end = time.thread_time() + cpu_left
        self._wall_end = time.monotonic() + wall_left

    def _stop(self) -> tuple[float, float]:
        return self._cpu_end - time.thread_time(), self._wall_end - time.monotonic()

    def run(self, sql: str, timeout_s: float = DEFAULT_TIMEOUT_S, ordered: bool = False,
            on_kill: dict | None = None, stop_after: int | None = None) -> QueryResult:
        """Execute one statement and fingerprint its rows, or say why it failed. `timeout_s`
        bounds the time inside SQLite; `on_kill` is what the pool reports if it must kill;
        past `stop_after` rows the query stops (a prediction with more rows than gold is
        wrong whatever follows, so digesting them is wasted time)."""
        self._denied = None
        hook = _query_hook
        left = (timeout_s, timeout_s * WALL_FACTOR)
        if hook is not None:
            hook(left, on_kill or {"reason": f"timeout after {timeout_s:g}s"})
        digest = ResultDigest(ordered)
        cur = None
        try:
            self._start(*left)
            cur = self.conn.cursor()
            cur.execute(sql)
            if cur.description is None:
                return QueryResult(None, error="error: not a query (returns no columns)")
            size, paused = _FIRST_CHUNK, False
            while True:
                if paused:
                    if hook is not None:
                        hook(left, None)
                    self._start(*left)
                    paused = False
                if stop_after is not None:
                    size = max(1, min(size, stop_after + 1 - digest.count))
                rows = cur.fetchmany(size)
                if not rows:
                    break
                if stop_after is not None and digest.count + len(rows) > stop_after:
                    return QueryResult(digest.count + len(rows), ordered=ordered, truncated=True)
                if len(rows) >= _PAUSE_ROWS:  # the clocks stop while a big chunk is digested
                    left, paused = self._stop(), True
                nbytes = digest.add(rows)
                if len(rows) < size:  # fetchmany comes back short only at the end
                    break
                if nbytes < _CHUNK_BYTES // 4:
                    size = min(size * 2, _MAX_CHUNK)
                elif nbytes > _CHUNK_BYTES:
                    size = max(1, size // 4)
        except sqlite3.Error as exc:
            return QueryResult(None, error=self._reason(exc, timeout_s))
        except (ValueError, OverflowError, MemoryError) as exc:
            return QueryResult(None, error=f"error: {exc}")
        finally:
            if cur is not None:
                cur.close()
            self._cpu_end = self._wall_end = 0.0
            if hook is not None:
                hook(None, None)
        return QueryResult(digest.count, digest.value(), ordered=ordered)

    def _reason(self, exc: Exception, timeout_s: float) -> str:
        if self._denied is not None:
            return f"denied: {self._denied}"
        msg = str(exc)
        if msg == "interrupted":
            return f"timeout after {timeout_s:g}s"
        if "not authorized" in msg or "authorization denied" in msg:
            return f"denied: {msg}"
        return f"error: {msg}"

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


# Connections of finished threads stay open until clear_caches(); scoring threads are few and
# long-lived (the runner's workers), so this does not grow in practice.
_sandboxes: dict[tuple[str, int], Sandbox] = {}
_gold_cache: OrderedDict[tuple, QueryResult] = OrderedDict()
_lock = threading.Lock()


def sandbox(path: str) -> Sandbox:
    """The cached sandbox for `path` in the calling thread (opened on first use)."""
    key = (path, threading.get_ident())
    box = _sandboxes.get(key)
    if box is None:
        box = Sandbox(path)
        with _lock:
            _sandboxes[key] = box
    return box


def is_timeout(error: str | None) -> bool:
    """Whether a QueryResult error is a timeout."""
    return error is not None and error.startswith("timeout")


def run_query(path: str, sql: str, timeout_s: float = DEFAULT_TIMEOUT_S, ordered: bool = False,
              on_kill: dict | None = None, stop_after: int | None = None) -> QueryResult:
    """Run `sql` in the sandbox of `path` (see `Sandbox.run`); a database that cannot be
    opened is an error."""
    try:
        box = sandbox(path)
    except sqlite3.Error as exc:
        return QueryResult(None, error=f"error: cannot open database: {exc}")
    return box.run(sql, timeout_s, ordered, on_kill, stop_after)


def run_gold(path: str, gold: str, timeout_s: float = DEFAULT_TIMEOUT_S,
             on_kill: dict | None = None) -> QueryResult:
    """The gold query's fingerprint (cached unless it timed out), ordered when it has a
    top-level ORDER BY."""
    key = (path, gold)
    with _lock:
        hit = _gold_cache.get(key)
        if hit is not None:
            _gold_cache.move_to_end(key)
            return hit
    kill = on_kill or {"reason": f"gold failed: timeout after {timeout_s:g}s"}
    res = run_query(path, gold, timeout_s, has_top_level_order_by(gold), kill)
    if not is_timeout(res.error):
        with _lock:
            _gold_cache[key] = res
            while len(_gold_cache) > GOLD_CACHE_SIZE:
                _gold_cache.popitem(last=False)
    return res


def timeout_detail(timeout_s: float, **context) -> dict:
    """The detail of a prediction that ran past its time limit."""
    return {"reason": "timeout", "timeout_s": float(timeout_s), **context}


def compare_on(path: str, prediction: str, gold: str, timeout_s: float = DEFAULT_TIMEOUT_S,
               **context) -> tuple[bool, dict]:
    """Whether `prediction` returns the gold result on `path`, and a detail dict. `context`
    (e.g. `variant=0`) is added to a timeout's detail."""
    g = run_gold(path, gold, timeout_s)
    if g.error is not None:
        return False, {"reason": f"gold failed: {g.error}"}
    p = run_query(path, prediction, timeout_s, g.ordered, timeout_detail(timeout_s, **context),
                  stop_after=g.count)
    if is_timeout(p.error):
        return False, timeout_detail(timeout_s, **context)
    if p.error is not None:
        return False, {"reason": p.error}
    if p.count == g.count and p.digest == g.digest and not p.truncated:
        return True, {}
    detail = {"reason": "different result", "rows": p.count, "gold_rows": g.count,
              "ordered": g.ordered}
    return False, {**detail, "more_rows": True} if p.truncated else detail


def clear_caches(close: bool = True) -> None:
    """Empty the gold-result cache and (by default) close every cached connection."""
    with _lock:
        _gold_cache.clear()
        if close:
            for box in _sandboxes.values():
                try:
                    box.close()
                except sqlite3.Error:
                    pass
            _sandboxes.clear()
