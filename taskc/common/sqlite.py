"""Reading SQLite databases without changing them: the one read-only URI and the one schema reader
the compiler (DDL for prompts), the grammars (tables and columns) and the metrics (the scoring
sandbox, test-suite variants) share.

The URI quotes the path (so `?` or `#` in a file name stays part of the name) and opens it
`mode=ro&immutable=1`, which creates nothing, not even the `-wal` and `-shm` files SQLite makes
beside a WAL database opened `mode=ro` alone.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote


def read_only_uri(path: str | Path) -> str:
    """The SQLite URI that opens `path` read-only and creates nothing."""
    return "file:" + quote(str(Path(path).resolve())) + "?mode=ro&immutable=1"


def connect_read_only(path: str | Path, **kwargs: Any) -> sqlite3.Connection:
    """A read-only connection to an existing SQLite file (FileNotFoundError when there is none)."""
    if not Path(path).is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    return sqlite3.connect(read_only_uri(path), uri=True, **kwargs)


def schema_objects(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(type, name, sql) of every object with DDL (tables first, then indexes, views and
    triggers, each in creation order), SQLite's own `sqlite_*` objects left out."""
    return conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid").fetchall()


def schema_ddl(conn: sqlite3.Connection) -> str:
    """The database's DDL as prompts show it: one statement per object, `;`-terminated."""
    rows = schema_objects(conn)
    return ";\n".join(sql.strip() for _, _, sql in rows) + (";" if rows else "")


def table_columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Tables and views with their column names, in schema order."""
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid")]
    return {name: [row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))] for name in names}
