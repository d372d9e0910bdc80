"""SQL outputs: the database each example runs on, its DDL for prompts, its grammar."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Database:
    """One SQLite database a sql task refers to. `key` is its path relative to the spec."""

    key: str
    path: Path
    sha256: str
    ddl: str


def open_database(key: str, path: Path) -> Database:
    """Read a database's schema (read-only); raise OSError/sqlite3.Error when it cannot be read."""
    raw = path.read_bytes()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid"
        ).fetchall()
    finally:
        con.close()
    ddl = ";\n".join(r[0].strip() for r in rows) + (";" if rows else "")
    return Database(key=key, path=path, sha256=hashlib.sha256(raw).hexdigest(), ddl=ddl)


def database_grammar(db: Database) -> str:
    """The Lark grammar of SQLite queries over this database's tables and columns."""
    from taskc.constraints.sql_grammar import sql_grammar, sqlite_tables

    return sql_grammar(sqlite_tables(db.path))
