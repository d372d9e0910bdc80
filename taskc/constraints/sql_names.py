"""SQLite names as both SQL grammars and the canonical serialization spell them: the keyword
list, ASCII-only case folding, when a name needs quotes, and each name's canonical spelling."""

from __future__ import annotations

import re

#: Every SQLite keyword (https://sqlite.org/lang_keywords.html), plus TRUE / FALSE: a schema
#: name that is one is only offered quoted. (Aliases cannot be one: see `alias_regex`.)
SQLITE_KEYWORDS = frozenset(
    """ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN
    BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS CURRENT
    CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED DELETE DESC DETACH
    DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST
    FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX
    INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH
    MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER
    PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP REINDEX
    RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP
    TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE USING VACUUM VALUES VIEW
    VIRTUAL WHEN WHERE WINDOW WITH WITHOUT TRUE FALSE""".split()
)

#: SQLite's ASCII-only case folding (SQLite does not fold other letters).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def fold(name: str) -> str:
    """A name as SQLite compares it: ASCII letters lower-cased, nothing else changed."""
    return name.translate(_ASCII_LOWER)


def needs_quotes(name: str) -> bool:
    """Whether SQLite needs `name` quoted: not a plain identifier, or a keyword."""
    return not _BARE.fullmatch(name) or name.upper() in SQLITE_KEYWORDS


def quote_name(name: str) -> str:
    """The canonical spelling of a schema name: bare, or in double quotes (``"`` doubled)."""
    return '"' + name.replace('"', '""') + '"' if needs_quotes(name) else name


def spellings(tables: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, str], dict[str, frozenset[str]]]:
    """(table spelling by folded name, column spelling by folded name, folded columns by folded
    table). The first spelling in schema order wins, as in the grammar's name lists."""
    table_names: dict[str, str] = {}
    column_names: dict[str, str] = {}
    columns_of: dict[str, frozenset[str]] = {}
    for table, columns in tables.items():
        table_names.setdefault(fold(table), table)
        columns_of[fold(table)] = frozenset(fold(c) for c in columns)
        for column in columns:
            column_names.setdefault(fold(column), column)
    return table_names, column_names, columns_of
