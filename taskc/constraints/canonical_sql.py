"""The canonical SQL serialization: one spelling per query, as compact JSON is one per object.

`canonical_sql(query, tables)` parses a SQLite query with sqlglot and writes it back in the one
form the canonical grammar (`sql_grammar(..., form="canonical")`) admits:

- keywords and function names in upper case, as sqlglot writes them (``COUNT(*)``,
  ``SUBSTRING`` for ``substr``, ``COALESCE`` for ``ifnull``, ``b LIKE a`` for ``like(a, b)``);
- table and column names spelled as in the schema (a column name found in several tables with
  different cases: its first spelling in schema order), double-quoted only where SQLite needs
  it (not a plain identifier, or a keyword);
- table aliases renamed ``T1``, ``T2``, ... in the order they are declared, the same name for
  the same alias everywhere in the query (a consistent renaming, so every reference resolves
  as before);
- one space between words, after a comma and around a binary operator; none inside
  parentheses; no trailing ``;``;
- string literals in single quotes. A double-quoted word that names no column of the query's
  tables is, in SQLite, that string (SQLite's fallback for unknown identifiers): it becomes
  ``'word'``;
- redundant words dropped: ``ASC``, ``INNER``, ``OUTER``, ``SELECT ALL``, and NULLS FIRST/LAST
  where it is the default; ``a NOT IN``, ``a NOT BETWEEN``, ``a NOT LIKE``, ``a IS NOT NULL``
  written infix (``a != b`` becomes ``a <> b``, ``LIMIT 2, 5`` becomes ``LIMIT 5 OFFSET 2``).

Every rewrite keeps the query's meaning in SQLite: names and keywords fold ASCII case, the alias
renaming is one-to-one, and comma joins stay comma joins (SQLite plans ``CROSS JOIN`` in a fixed
order, which can reorder ties under ORDER BY ... LIMIT). Where sqlglot would change a meaning,
the query is refused instead (`NotCanonical`): a CAST to a type whose SQLite affinity sqlglot's
spelling changes (``NUMERIC``, ``DECIMAL``, ``BOOLEAN``, ``DATE``...), a name the schema does not
have, a result-column alias, a WITH clause, a statement that is not one SELECT. The compiler then
keeps that gold answer as written (see `taskc.compiler.build`), and ``taskc verify`` shows
whether the grammar takes it. tests/constraints/test_canonical_sql.py runs every gold query of
examples/text2sql and its canonical form on the database and compares the results.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .sql_names import fold, needs_quotes, quote_name, spellings  # noqa: F401 (quote_name: public here too)

#: At most this many table aliases: the canonical grammar's ALIAS is T1-T9.
MAX_ALIASES = 9


class NotCanonical(ValueError):
    """The query cannot be put in canonical form (the message says why)."""


@lru_cache(maxsize=1)
def _dialect() -> Any:
    """sqlglot's SQLite dialect with three changes (built once; importing sqlglot is lazy)."""
    from sqlglot import exp
    from sqlglot.dialects.sqlite import SQLite

    class TaskcCanonicalSQLite(SQLite):
        class Parser(SQLite.Parser):
            # keep ``FROM a, b`` a comma join: SQLite's parser turns it into CROSS JOIN, which
            # fixes the join order (and so the order of ties under ORDER BY ... LIMIT)
            JOINS_HAVE_EQUAL_PRECEDENCE = False

        class Generator(SQLite.Generator):
            def not_sql(self, expression: Any) -> str:
                # ``a NOT IN (...)`` rather than sqlglot's ``NOT a IN (...)``: the same meaning
                # (NOT binds looser than IN, BETWEEN, LIKE, GLOB, IS), the form people write
                inner = expression.this
                if isinstance(inner, (exp.In, exp.Between, exp.Like, exp.Glob)) or (
                        isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null)):
                    left = self.sql(inner, "this")
                    whole = self.sql(inner)
                    for word in (" IN ", " BETWEEN ", " LIKE ", " GLOB ", " IS "):
                        if whole.startswith(left + word):
                            if word == " IS ":
                                return f"{left} IS NOT{whole[len(left) + 3:]}"
                            return f"{left} NOT{whole[len(left):]}"
                return super().not_sql(expression)

    return TaskcCanonicalSQLite


#: sqlglot's type -> the canonical CAST type, for the types whose SQLite affinity it keeps.
_CAST_TYPES = {
    "INT": "INTEGER", "BIGINT": "INTEGER", "SMALLINT": "INTEGER", "TINYINT": "INTEGER", "MEDIUMINT": "INTEGER",
    "DOUBLE": "REAL", "FLOAT": "REAL",
    "TEXT": "TEXT", "VARCHAR": "TEXT", "CHAR": "TEXT", "NCHAR": "TEXT", "NVARCHAR": "TEXT",
    "VARBINARY": "BLOB", "BLOB": "BLOB",
}


def canonical_sql(query: str, tables: dict[str, list[str]]) -> str:
    """The canonical form of one SQLite SELECT query over these tables (see the module doc).

    `tables` maps table names to column names, as `sqlite_tables` returns them. Raises
    `NotCanonical` when the query cannot be written canonically without a risk to its meaning.
    Idempotent: the canonical form of a canonical query is itself.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, SqlglotError

    text = query.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        raise NotCanonical("empty query")
    dialect = _dialect()
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except SqlglotError as exc:
        raise NotCanonical(f"sqlglot cannot parse it: {str(exc).splitlines()[0][:200]}") from None
    if len(statements) != 1:
        raise NotCanonical(f"{len(statements)} statements, not one")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise NotCanonical(f"not a SELECT query ({type(tree).__name__})")
    _rewrite(tree, text, tables)
    try:
        return tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise NotCanonical(f"sqlglot cannot write it back: {str(exc).splitlines()[0][:200]}") from None


def _double_quoted(node: Any, text: str) -> bool:
    """Whether an identifier was written in double quotes in `text` (not `` ` `` or ``[]``)."""
    start = (node.meta or {}).get("start") if hasattr(node, "meta") else None
    return isinstance(start, int) and 0 <= start < len(text) and text[start] == '"'


def _set_name(identifier: Any, name: str) -> None:
    identifier.set("this", name)
    identifier.set("quoted", needs_quotes(name))


@lru_cache(maxsize=1)
def _kinds() -> tuple[type, ...]:
    """The node types `_rewrite` looks at (TableAlias before Alias: neither is the other's subclass,
    but the order of the checks is the order of this tuple)."""
    from sqlglot import exp

    return (exp.TableAlias, exp.Alias, exp.Table, exp.Column, exp.Cast, exp.Ordered, exp.Join)


def _rewrite(tree: Any, text: str, tables: dict[str, list[str]]) -> None:
    """Rewrite the parsed query in place into the canonical form (names, aliases, words)."""
    from sqlglot import exp

    table_names, column_names, columns_of = spellings(tables)
    kinds = _kinds()
    found: dict[type, list[Any]] = {kind: [] for kind in kinds}
    for node in tree.walk(bfs=False):  # one walk, depth first: text order
        if isinstance(node, exp.With):
            raise NotCanonical("a WITH clause")
        for kind in kinds:
            if isinstance(node, kind):
                found[kind].append(node)
                break
    if any(isinstance(node.parent, exp.Select) for node in found[exp.Alias]):
        raise NotCanonical("a result-column alias")

    # table aliases -> T1, T2, ... in order of declaration
    aliases: dict[str, str] = {}
    for node in found[exp.TableAlias]:
        if not isinstance(node.parent, (exp.Table, exp.Subquery)):
            raise NotCanonical(f"an alias where a table alias is expected ({type(node.parent).__name__})")
        if node.args.get("columns"):
            raise NotCanonical("an alias with column names")
        old = fold(node.name)
        if old in table_names:
            raise NotCanonical(f"alias {node.name!r} is also a table name")
        if old not in aliases:
            aliases[old] = f"T{len(aliases) + 1}"
    if len(aliases) > MAX_ALIASES:
        raise NotCanonical(f"{len(aliases)} table aliases (at most {MAX_ALIASES})")
    if any(fold(new) in table_names for new in aliases.values()):
        raise NotCanonical("a table of the schema is named like a canonical alias (T1-T9)")
    for node in found[exp.TableAlias]:
        _set_name(node.this, aliases[fold(node.name)])

    used_columns: set[str] = set()
    for node in found[exp.Table]:
        if node.args.get("db") or node.args.get("catalog"):
            raise NotCanonical(f"a schema-qualified table ({node.sql()})")
        if not isinstance(node.this, exp.Identifier):
            raise NotCanonical(f"a table that is not a name ({node.sql()})")
        key = fold(node.name)
        if key not in table_names:
            raise NotCanonical(f"no table {node.name!r} in the schema")
        _set_name(node.this, table_names[key])
        used_columns |= columns_of[key]

    for node in found[exp.Column]:
        qualifier = node.args.get("table")
        if node.args.get("db") or node.args.get("catalog"):
            raise NotCanonical(f"a column with a schema ({node.sql()})")
        if isinstance(qualifier, exp.Identifier):
            key = fold(qualifier.name)
            if key in aliases:
                _set_name(qualifier, aliases[key])
            elif key in table_names:
                _set_name(qualifier, table_names[key])
            else:
                raise NotCanonical(f"no table or alias {qualifier.name!r}")
        name = node.this
        if isinstance(name, exp.Star):
            continue
        if not isinstance(name, exp.Identifier):
            raise NotCanonical(f"a column that is not a name ({node.sql()})")
        key = fold(name.name)
        if qualifier is None and _double_quoted(name, text) and key not in used_columns:
            node.replace(exp.Literal.string(name.name))  # SQLite reads it as this string
            continue
        if key not in column_names:
            raise NotCanonical(f"no column {name.name!r} in the schema")
        _set_name(name, column_names[key])

    for node in found[exp.Cast]:
        target = node.args.get("to")
        kind = getattr(getattr(target, "this", None), "name", None)
        if kind not in _CAST_TYPES:
            raise NotCanonical(f"CAST to {target.sql() if target is not None else '?'} (sqlglot would change its SQLite affinity)")
        node.set("to", exp.DataType.build(_CAST_TYPES[kind]))
    for node in found[exp.Ordered]:
        if node.args.get("desc") is False:
            node.set("desc", None)
    for node in found[exp.Join]:
        kind = (node.args.get("kind") or "").upper()
        if kind == "INNER" or (kind == "OUTER" and node.args.get("side")):
            node.set("kind", None)
