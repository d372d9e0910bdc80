"""A Lark grammar for SQLite SELECT queries, specialised to one database, in two forms.

``form="canonical"`` (what a contract uses unless its spec says ``grammar: permissive``) admits
only the spelling of `taskc.constraints.canonical_sql`: upper-case keywords, each name spelled
once as in the schema, single spaces, aliases T1-T9 (`_sql_canonical_rules`). A model trained on
the contract's canonical gold answers meets it at inference; its masks cost a fraction of the
permissive ones (bench/RESULTS.md, "Engine throughput"). The rest of this docstring describes
the permissive form, whose design choices (bounds, ASCII-only case folding, no ``--``, the
three consumers) the canonical form shares.

`sql_grammar(sqlite_tables(db))` allows only that database's table names where a table is
expected and only its column names where a column is expected (any spelling case; names that are
not plain identifiers, or are SQLite keywords, quoted as ``"col"``, ```col``` or ``[col]``).
Table aliases (``T1``, ``s``, ``emp2``: see `alias_regex`) follow a table or subquery, with or
without ``AS``, and qualify columns as ``T1.col``; a table name qualifies them too. The grammar is
written for three consumers at once:

- llguidance's Lark dialect (a lexer: names in UPPER case are single lexemes);
- xgrammar's native Lark front end, which vLLM >= 0.32 calls (``compile_lark``);
- Python ``lark`` (Earley) for parsing.

Hence: no ``%ignore``, no lookarounds, no terminal priorities, ``[0-9]`` never ``\\d``.

Lists, operator chains, nesting (one level of subquery) and numbers are bounded (`_sql_rules`),
so a model cannot loop on them; string literals are not unless asked (`max_string`; see
`_sql_rules` for why). Whitespace is explicit and bounded too: `_WS` is 1-4 spaces or one
newline, between lexemes only (gold queries have runs of up to three spaces, ``name ,  country``),
so a model can never loop on whitespace. Words are always separated by whitespace; around
punctuation and operators it is optional (`_o`). Function arities are part of the grammar and
``--`` (a comment) can never form, so every string it admits is a query SQLite can parse; only
name resolution (``no such column: T3.x``, an alias never declared) is left to SQLite.

Keywords and names match ASCII case-insensitively through explicit classes (`ascii_ci`), never
``"select"i``, which engines fold the Unicode way (``ſelect``, U+017F, would pass).
Optional whitespace is a rule (`_o`), never ``_WS?`` inline: Lark expands each inline ``?`` into
two alternatives of the enclosing rule (a rule with eight became 256; Earley crawled).
"""

from __future__ import annotations

import re
from pathlib import Path

from . import _sql_canonical_rules
from taskc.common.sqlite import connect_read_only, table_columns

from ._sql_rules import rules
from .sql_names import SQLITE_KEYWORDS, needs_quotes, quote_name, spellings  # noqa: F401 (SQLITE_KEYWORDS: re-exported)

#: The two grammar forms: ``canonical`` admits only `canonical_sql`'s spelling (the default for a
#: contract, whose gold answers are written so); ``permissive`` any spelling SQLite reads.
SQL_FORMS = ("canonical", "permissive")


# Scalar and aggregate functions by arity (SQLite 3.32+ core functions).
_FUNCS_1 = "abs length lower upper typeof hex quote unicode likely zeroblob randomblob".split()
_FUNCS_1_2 = "round trim ltrim rtrim".split()
_FUNCS_2 = "ifnull nullif instr glob like".split()
_FUNCS_2_3 = "substr substring".split()
_FUNCS_3 = "replace iif likelihood".split()
_FUNCS_2_N = "coalesce".split()
_FUNCS_1_N = "strftime printf char".split()
_FUNCS_0_N = "date time datetime julianday".split()
_FUNCS_0 = "random changes last_insert_rowid total_changes".split()
_AGG_1 = "sum avg total".split()
_TYPES = "INTEGER INT REAL TEXT NUMERIC FLOAT DOUBLE VARCHAR CHAR BOOLEAN DATE DATETIME BLOB".split()

def sqlite_tables(db_path: str | Path) -> dict[str, list[str]]:
    """Tables (and views) of a SQLite file with their columns, both in schema order, read through
    `taskc.common.sqlite` (read-only, creating nothing, not even a WAL file's `-shm`); SQLite's
    internal ``sqlite_*`` tables are left out."""
    con = connect_read_only(db_path)
    try:
        return table_columns(con)
    finally:
        con.close()


_REGEX_SPECIAL = set("\\^$.|?*+()[]{}/")


def ascii_ci(text: str) -> str:
    """A Lark regex literal matching `text` with ASCII letters in either case and nothing else.

    Not ``"text"i``: engines fold case the Unicode way, so ``"select"i`` also matches ``ſelect``
    (U+017F) and ``"like"i`` matches ``liKe`` (U+212A KELVIN SIGN); SQLite folds ASCII only
    and rejects both (seen in llguidance random walks and accepted by Python's ``re``).
    """
    out = []
    for ch in text:
        if ch.isascii() and ch.isalpha():
            out.append(f"[{ch.upper()}{ch.lower()}]")
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "/" + "".join(out) + "/"


def _ci_rules(rules: str) -> str:
    """Rewrite every ``"word"i`` literal of the rule text with `ascii_ci`."""
    return re.sub(r'"([^"\\]+)"i', lambda m: ascii_ci(m.group(1)), rules)


def _lark_str(text: str) -> str:
    """A case-insensitive (ASCII) Lark literal for `text`."""
    return ascii_ci(text)


def _is_bare_identifier(name: str) -> bool:
    return not needs_quotes(name)


def _longest_first(words: list[str]) -> list[str]:
    """Longest first, so that a regex engine that takes the first matching alternative (Python's
    ``re``, hence Lark's dynamic lexer) never stops at a prefix (``date`` in ``datetime``)."""
    return sorted(words, key=len, reverse=True)


def name_alternatives(names: list[str]) -> str:
    """Lark alternatives for schema names: bare (when SQLite allows it) or quoted three ways."""
    alts: list[str] = []
    seen: set[str] = set()
    for name in names:
        key = name.lower()
        if key in seen:
            continue
        seen.add(key)
        if _is_bare_identifier(name):
            alts.append(_lark_str(name))
            continue
        alts.append(_lark_str('"' + name.replace('"', '""') + '"'))
        alts.append(_lark_str("`" + name.replace("`", "``") + "`"))
        if "]" not in name:
            alts.append(_lark_str("[" + name + "]"))
    return " | ".join(_longest_first(alts))


def alias_regex(max_letters: int = 3, max_digits: int = 2) -> str:
    """Regex for table aliases: one letter, or 1-`max_letters` letters then 1-`max_digits` digits.

    ``T1``, ``t2``, ``s``, ``sc1``, ``emp2``. No SQLite keyword has a digit or a single letter,
    so a grammar walk can never produce ``FROM t AS on``; and the short, bounded shape keeps a
    random model from looping inside an alias and xgrammar's compile time low (a generic
    identifier minus the 147 keywords cost xgrammar ~5x the compile time of this grammar).
    """
    rest = "[A-Za-z_]{0,%d}" % (max_letters - 1) if max_letters > 1 else ""
    digits = "[0-9]" + ("{1,%d}" % max_digits if max_digits > 1 else "")
    return f"[A-Za-z]({rest}{digits})?"


def sql_grammar(tables: dict[str, list[str]], max_string: int | None = None, form: str = "permissive") -> str:
    """A Lark grammar (start rule ``start``) for SQLite SELECT queries over these tables.

    `tables` maps table names to column names, as `sqlite_tables` returns. `form` "permissive":
    keywords match in any (ASCII) case, table and column names in any case, bare or quoted, with
    1-4 spaces or a newline between words. "canonical": only the spelling of
    `taskc.constraints.canonical_sql` (upper-case keywords, names as in the schema, single
    spaces, aliases T1-T9), a much smaller language over the same statements. `max_string`
    bounds string literals (characters); leave it None for real models and set it (e.g. 64)
    where a random-weight model must finish: it never closes an unbounded string within a few
    hundred tokens, but a bounded string costs xgrammar ~80 ms per mask inside it (llguidance:
    no cost). See the module doc for the scope.
    """
    if form not in SQL_FORMS:
        raise ValueError(f"unknown SQL grammar form {form!r} (expected one of {', '.join(SQL_FORMS)})")
    if not tables:
        raise ValueError("a SQL grammar needs at least one table")
    columns = [col for cols in tables.values() for col in cols]
    if not columns:
        raise ValueError("the tables have no columns")
    if form == "canonical":
        return _canonical_grammar(tables, max_string)

    def terminal(name: str, words: list[str]) -> str:
        return f"{name}: " + " | ".join(_lark_str(w) for w in _longest_first(words))

    lines = [
        f"TABLE: {name_alternatives(list(tables))}",
        f"COLUMN: {name_alternatives(columns)}",
        f"ALIAS: /{alias_regex()}/",
        f"TYPE_NAME: {' | '.join(_lark_str(t) for t in _TYPES)}",
        terminal("AGG_1", _AGG_1),
        terminal("FUNC_0", _FUNCS_0),
        terminal("FUNC_1", _FUNCS_1),
        terminal("FUNC_1_2", _FUNCS_1_2),
        terminal("FUNC_2", _FUNCS_2),
        terminal("FUNC_2_3", _FUNCS_2_3),
        terminal("FUNC_3", _FUNCS_3),
        terminal("FUNC_2_N", _FUNCS_2_N),
        terminal("FUNC_1_N", _FUNCS_1_N),
        terminal("FUNC_0_N", _FUNCS_0_N),
    ]
    return _ci_rules(rules(max_string)) + "\n".join(lines) + "\n"


def _canonical_grammar(tables: dict[str, list[str]], max_string: int | None) -> str:
    """The canonical form: each name once, in its canonical spelling (`sql_names.spellings`)."""
    import json

    table_names, column_names, _ = spellings(tables)

    def exact(names) -> str:
        spelled = sorted({quote_name(n) for n in names}, key=lambda n: (-len(n), n))
        return " | ".join(json.dumps(n, ensure_ascii=False) for n in spelled)

    names = [f"TABLE: {exact(table_names.values())}", f"COLUMN: {exact(column_names.values())}"]
    return _sql_canonical_rules.rules(max_string) + "\n".join(names) + "\n"


def sql_grammar_for_db(db_path: str | Path, max_string: int | None = None, form: str = "permissive") -> str:
    """Shorthand: `sql_grammar(sqlite_tables(db_path), max_string, form)`."""
    return sql_grammar(sqlite_tables(db_path), max_string, form)
