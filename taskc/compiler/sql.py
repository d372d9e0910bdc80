"""SQL outputs: the database each example runs on, its DDL for prompts, its grammar.

Databases are only ever read, through `taskc.common.sqlite` (the read-only URI and schema reader
the grammars and the metrics use too), which creates nothing beside them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from taskc.common.sqlite import connect_read_only, schema_ddl, table_columns


@dataclass(frozen=True)
class Database:
    """One SQLite database a sql task refers to. `key` is its path relative to the spec; `tables`
    its tables (and views) with their columns, in schema order (`taskc.common.sqlite.table_columns`)."""

    key: str
    path: Path
    sha256: str
    ddl: str
    tables: dict[str, list[str]] = field(default_factory=dict, compare=False)


def open_database(key: str, path: Path) -> Database:
    """Read a database's schema (read-only); raise OSError/sqlite3.Error when it cannot be read."""
    raw = path.read_bytes()
    con = connect_read_only(path)
    try:
        ddl, tables = schema_ddl(con), table_columns(con)
    finally:
        con.close()
    return Database(key=key, path=path, sha256=hashlib.sha256(raw).hexdigest(), ddl=ddl, tables=tables)


def database_grammar(db: Database, form: str = "permissive") -> str:
    """The Lark grammar of SQLite queries over this database's tables and columns, in `form`
    ``canonical`` or ``permissive`` (`taskc.constraints.sql_grammar`)."""
    from taskc.constraints.sql_grammar import sql_grammar

    return sql_grammar(db.tables, form=form)


@dataclass(frozen=True)
class CanonicalGold:
    """What `canonical_gold` made: `texts` (gold query, stripped -> canonical text), the number
    of `rows` and the queries kept as written, `kept` ((split, row, reason), in row order)."""

    texts: dict[str, str]
    rows: int
    kept: tuple[tuple[str, int, str], ...]

    def summary(self, limit: int = 5) -> dict:
        """For the contract's analysis: row counts and the first few reasons."""
        return {"rows_canonical": self.rows - len(self.kept), "rows_as_written": len(self.kept),
                "examples": [{"split": s, "row": i, "reason": r} for s, i, r in self.kept[:limit]]}


def canonical_gold(gold: dict[str, tuple], row_dbs: dict[str, tuple], databases: dict[str, Database]) -> CanonicalGold:
    """The canonical SQL of every gold query, on its row's database (`canonical_sql`).

    A query that cannot be put in canonical form is kept as written (with the reason); so is
    one whose text canonicalizes differently on two of the task's databases (the mapping is by
    text). Each distinct (query, database) is canonicalized once."""
    from taskc.constraints.canonical_sql import NotCanonical, canonical_sql

    done: dict[tuple[str, str], str | NotCanonical] = {}
    texts: dict[str, str] = {}
    ambiguous: set[str] = set()
    kept: list[tuple[str, int, str]] = []
    for split, values in gold.items():
        for i, value in enumerate(values):
            key = row_dbs[split][i]
            text = str(value).strip()
            if (text, key) not in done:
                try:
                    done[text, key] = canonical_sql(text, databases[key].tables)
                except NotCanonical as exc:
                    done[text, key] = exc
            result = done[text, key]
            if isinstance(result, NotCanonical):
                kept.append((split, i, str(result)))
            elif texts.setdefault(text, result) != result:
                ambiguous.add(text)
    for text in ambiguous:
        del texts[text]
    if ambiguous:
        for split, values in gold.items():
            kept += [(split, i, "canonical form differs between databases") for i, v in enumerate(values)
                     if str(v).strip() in ambiguous]
    return CanonicalGold(texts=texts, rows=sum(len(v) for v in gold.values()), kept=tuple(kept))
