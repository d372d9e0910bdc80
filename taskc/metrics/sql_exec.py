"""A read-only SQLite sandbox for scoring generated SQL, and result comparison.

Every database is opened through the URI `file:<path>?mode=ro&immutable=1`, with extension
loading off, a length limit on values, and an authorizer that allows only reading: SELECT,
READ, RECURSIVE and FUNCTION (except load_extension and file-touching functions). Everything
else is denied at prepare time, before anything runs: INSERT/UPDATE/DELETE, CREATE/DROP/ALTER,
ATTACH/DETACH (also what VACUUM and VACUUM INTO ask for), PRAGMA, transactions and savepoints,
ANALYZE, REINDEX and virtual tables. A progress handler interrupts a query past its time
limit; at most `max_rows` rows are accepted.

Connections are cached per (database path, thread) and reused; gold results are cached per
(database, gold query, row cap) in an in-process LRU dict.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_MAX_ROWS = 10_000
MAX_VALUE_LENGTH = 10_000_000
GOLD_CACHE_SIZE = 4096

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


@dataclass(frozen=True)
class QueryResult:
    """Normalized rows of a query, or `error` ("denied: ...", "timeout ...", "error: ...",
    "too many rows ..."). `ordered` is set by `run_gold` when the query has a top-level
    ORDER BY."""

    rows: tuple[tuple, ...] | None
    error: str | None = None
    ordered: bool = False


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


def _normalize_value(v: object) -> object:
    if type(v) is float:
        if v.is_integer():
            return int(v)
        return float("%.10g" % v)
    return v


def normalize_rows(rows: list[tuple]) -> tuple[tuple, ...]:
    """Rows with integral floats as ints and other floats at 10 significant digits."""
    out = []
    for row in rows:
        for v in row:
            if type(v) is float:
                row = tuple(_normalize_value(x) for x in row)
                break
        out.append(row)
    return tuple(out)


def results_match(pred: tuple[tuple, ...], gold: tuple[tuple, ...], ordered: bool) -> bool:
    """Equal row sequences when `ordered`, else equal row multisets."""
    if len(pred) != len(gold):
        return False
    if ordered:
        return pred == gold
    return pred == gold or Counter(pred) == Counter(gold)


class Sandbox:
    """One read-only, authorizer-guarded connection to a SQLite file."""

    def __init__(self, path: str):
        self.path = path
        uri = "file:" + quote(str(Path(path).resolve())) + "?mode=ro&immutable=1"
        self._denied: str | None = None
        self._deadline = 0.0
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        if hasattr(self.conn, "enable_load_extension"):
            self.conn.enable_load_extension(False)
        if hasattr(self.conn, "setlimit"):
            self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_LENGTH)
            self.conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self.conn.set_authorizer(self._authorize)
        self.conn.set_progress_handler(self._progress, 1000)

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
        return 1 if time.monotonic() > self._deadline else 0

    def run(self, sql: str, timeout_s: float = DEFAULT_TIMEOUT_S,
            max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
        """Execute one statement; rows (normalized) or the reason it failed."""
        self._denied = None
        self._deadline = time.monotonic() + timeout_s
        cur = None
        try:
            cur = self.conn.cursor()
            cur.execute(sql)
            if cur.description is None:
                return QueryResult(None, "error: not a query (returns no columns)")
            rows = cur.fetchmany(max_rows + 1)
        except sqlite3.Error as exc:
            return QueryResult(None, self._reason(exc, timeout_s))
        except (ValueError, OverflowError, MemoryError) as exc:
            return QueryResult(None, f"error: {exc}")
        finally:
            if cur is not None:
                cur.close()
            self._deadline = 0.0
        if len(rows) > max_rows:
            return QueryResult(None, f"too many rows (> {max_rows})")
        return QueryResult(normalize_rows(rows))

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


def run_query(path: str, sql: str, timeout_s: float = DEFAULT_TIMEOUT_S,
              max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
    """Run `sql` in the sandbox of `path`; a database that cannot be opened is an error."""
    try:
        box = sandbox(path)
    except sqlite3.Error as exc:
        return QueryResult(None, f"error: cannot open database: {exc}")
    return box.run(sql, timeout_s, max_rows)


def run_gold(path: str, gold: str, timeout_s: float = DEFAULT_TIMEOUT_S,
             max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
    """The gold query's result (cached), with `ordered` set from its top-level ORDER BY."""
    key = (path, gold, max_rows)
    with _lock:
        hit = _gold_cache.get(key)
        if hit is not None:
            _gold_cache.move_to_end(key)
            return hit
    res = run_query(path, gold, timeout_s, max_rows)
    res = QueryResult(res.rows, res.error, has_top_level_order_by(gold))
    if res.error is None or not res.error.startswith("timeout"):
        with _lock:
            _gold_cache[key] = res
            while len(_gold_cache) > GOLD_CACHE_SIZE:
                _gold_cache.popitem(last=False)
    return res


def compare_on(path: str, prediction: str, gold: str, timeout_s: float = DEFAULT_TIMEOUT_S,
               max_rows: int = DEFAULT_MAX_ROWS) -> tuple[bool, dict]:
    """Whether `prediction` returns the gold result on `path`, and a detail dict."""
    g = run_gold(path, gold, timeout_s, max_rows)
    if g.error is not None:
        return False, {"reason": f"gold failed: {g.error}"}
    p = run_query(path, prediction, timeout_s, max_rows)
    if p.error is not None:
        return False, {"reason": p.error}
    if results_match(p.rows, g.rows, g.ordered):
        return True, {}
    return False, {"reason": "different result", "rows": len(p.rows), "gold_rows": len(g.rows),
                   "ordered": g.ordered}


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
