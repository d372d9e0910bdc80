"""The schema-independent rules of the canonical SQLite grammar (see `sql_grammar`).

The canonical grammar admits SQL in the one spelling `canonical_sql` writes: upper-case keywords
and function names, one space between words, after a comma and around a binary operator, none
inside parentheses, single-quoted strings, aliases ``T1``-``T9``. It covers the same statements as
the permissive grammar (`_sql_rules`) with the same bounds (nesting, list lengths, operator
chains), less what the canonical form never writes (``!=``, ``==``, ``ISNULL``, ``LIMIT a, b``,
``INNER``, ``OUTER``, ``ASC``, unary ``+``, double-quoted strings, ``ifnull``, ``substr``, ``glob()``,
``like()``).

Separators are folded into the keyword and operator lexemes (``" FROM "``, ``", "``, ``" = "``):
with a single spelling of every word and every space fixed, far fewer tokens are allowed at
each step than in the permissive grammar (where any case of any name prefix, with or without
1-4 spaces before it, is allowed), which is what makes its masks cheap.

llguidance's lexer is greedy and does not back off: a lexeme that is a proper prefix of another
one allowed at the same point must never be followed by text that continues the longer one
(``" DESC"`` then ``" LIMIT"`` died inside ``" DESC NULLS FIRST"``; ``" IS "`` then ``NULL``
inside ``" IS NOT "``; ``"CASE"`` then ``" Weight"`` inside ``" WHEN "``). Hence ``" DESC"`` and
``" NULLS FIRST"``, ``" IS "`` and ``"NOT "``, ``"CASE "`` and ``"WHEN "`` are separate lexemes.
(NULLS FIRST / LAST only where it is not SQLite's default, as sqlglot writes it.)
"""

from __future__ import annotations

from ._sql_rules import MAX_AND, MAX_ARGS, MAX_COLUMNS, MAX_COMPOUND, MAX_GROUP, MAX_IN, MAX_JOINS, MAX_OPS, \
    MAX_OR, MAX_ORDER, MAX_WHEN, Repeats

COMMA, OR, AND = '", "', '" OR "', '" AND "'

#: Function names as sqlglot writes them, by arity (`canonical_sql` relies on these spellings;
#: tests/constraints/test_canonical_sql.py checks sqlglot still writes them so).
FUNCS_0 = "RANDOM CHANGES LAST_INSERT_ROWID TOTAL_CHANGES".split()
FUNCS_1 = "ABS LENGTH LOWER UPPER TYPEOF HEX QUOTE UNICODE LIKELY ZEROBLOB RANDOMBLOB".split()
FUNCS_1_2 = "ROUND TRIM LTRIM RTRIM".split()
FUNCS_2 = "NULLIF INSTR".split()
FUNCS_2_3 = ["SUBSTRING"]
FUNCS_3 = "REPLACE IIF LIKELIHOOD".split()
FUNCS_2_N = ["COALESCE"]
FUNCS_1_N = "STRFTIME PRINTF CHAR".split()
FUNCS_0_N = "DATE TIME DATETIME JULIANDAY".split()
AGG_1 = "SUM AVG TOTAL".split()
TYPES = "INTEGER REAL TEXT BLOB".split()


def _words(name: str, words: list[str]) -> str:
    return f"{name}: " + " | ".join(f'"{w}"' for w in sorted(words, key=len, reverse=True))


def _chain(r: Repeats, level: int, term: str) -> str:
    return f"{term} {r.at_most(f'OP {term}', MAX_OPS[level])}".strip()


def _values(r: Repeats) -> str:
    cast = '"CAST(" {v} " AS " TYPE_NAME ")"'
    rules = [
        f"v0: {_chain(r, 0, 't0')}",
        't0: u0 | "-" u0',
        "u0: atom",
        f"v1: {_chain(r, 1, 't1')}",
        't1: u1 | "-" u1',
        f'u1: atom | call0 | "(" v0 ")" | {cast.format(v="v0")}',
        f'_u2: atom | call1 | "(" v1 ")" | case | {cast.format(v="v1")}',
    ]
    for w in (0, 1):
        scalar = ' | "(" select1 ")"' if w == 0 else ""  # a scalar subquery
        rules += [f"v2_{w}: {_chain(r, 2, f't2_{w}')}", f't2_{w}: u2_{w} | "-" u2_{w}',
                  f"u2_{w}: (_u2{scalar}) _collate"]
    return "\n".join(rules)


def _calls(r: Repeats) -> str:
    rules = []
    for level in (0, 1):
        v = f"v{level}"
        args = r.upto(v, MAX_ARGS, COMMA)
        rules.append(
            f"""call{level}: "COUNT(" ("*" | _distinct {v}) ")"
    | AGG_1 "(" _distinct {v} ")"
    | MIN_MAX "(" (_distinct {v} | {v} ", " {r.upto(v, MAX_ARGS - 1, COMMA)}) ")"
    | "GROUP_CONCAT(" ("DISTINCT " {v} | {v} (", " {v})?) ")"
    | FUNC_0 "()"
    | FUNC_1 "(" {v} ")"
    | FUNC_1_2 "(" {v} (", " {v})? ")"
    | FUNC_2 "(" {v} ", " {v} ")"
    | FUNC_2_3 "(" {v} ", " {v} (", " {v})? ")"
    | FUNC_3 "(" {v} ", " {v} ", " {v} ")"
    | FUNC_2_N "(" {v} ", " {r.upto(v, MAX_ARGS - 1, COMMA)} ")"
    | FUNC_1_N "(" {args} ")"
    | FUNC_0_N "(" ({args})? ")\""""
        )
    return "\n".join(rules)


def _conditions(r: Repeats) -> str:
    rules = []
    for name, value, in_body, exists in (
        ("0", "v2_0", "select1 | " + r.upto("v1", MAX_IN, COMMA), ' | "EXISTS(" select1 ")"'),
        ("1", "v2_1", r.upto("v1", MAX_IN, COMMA), ""),
        ("p", "v1", r.upto("v1", MAX_IN, COMMA), ""),
    ):
        paren = "" if name == "p" else ' | "(" boolp ")"'
        rules += [
            f"bool{name}: {r.upto(f'and{name}', MAX_OR, OR)}",
            f"and{name}: {r.upto(f'pred{name}', MAX_AND, AND)}",
            f"pred{name}: _not ({value} _tail{name}{paren}{exists})",
            f"""_tail{name}: (COMPARE {value}
    | MATCH_OP {value} (" ESCAPE " STRING)?
    | BETWEEN_OP {value} " AND " {value}
    | IN_OP "(" ({in_body}) ")"
    | " IS " _not {value})?""",
        ]
    return "\n".join(rules)


def _selects(r: Repeats) -> str:
    rules = []
    for w in (0, 1):
        source = f"source{w}"
        join = f"join{w}"
        sub = ' | "(" select1 ")" _alias' if w == 0 else ""
        rules += [
            f"select{w}: {r.upto(f'core{w}', MAX_COMPOUND, 'COMPOUND_OP')} _order_by _limit",
            f'core{w}: "SELECT " _distinct result_cols{w} _from{w} _where{w} _group_by{w}',
            f"result_cols{w}: {r.upto(f'result_col{w}', MAX_COLUMNS, COMMA)}",
            f'result_col{w}: "*" | qualifier ".*" | v2_{w}',
            f'_from{w}: (" FROM " {source} {r.at_most(join, MAX_JOINS)})?',
            f"{source}: TABLE _alias{sub}",
            f'{join}: ", " {source} | PLAIN_JOIN {source} | JOIN_OP {source} _join_constraint{w}',
            f'_join_constraint{w}: " ON " bool{w} | " USING (" {r.upto("COLUMN", 4, COMMA)} ")"',
            f'_where{w}: (" WHERE " bool{w})?',
            f'_group_by{w}: (" GROUP BY " {r.upto("v1", MAX_GROUP, COMMA)} (" HAVING " bool{w})?)?',
        ]
    return "\n".join(rules)


def _fixed(r: Repeats) -> str:
    """The rules that do not depend on the nesting level."""
    case_when = '" WHEN " boolp " THEN " v1'
    return rf"""
start: select0
COMPOUND_OP: " UNION ALL " | " UNION " | " INTERSECT " | " EXCEPT "
_distinct: ("DISTINCT ")?
_alias: (" AS " ALIAS)?
ALIAS: /T[1-9]/
JOIN_OP: " JOIN " | " LEFT JOIN "
PLAIN_JOIN: " CROSS JOIN " | " NATURAL JOIN " | " NATURAL LEFT JOIN "
_order_by: (" ORDER BY " {r.upto("ordering_term", MAX_ORDER, COMMA)})?
ordering_term: v1 (" DESC" (" NULLS FIRST")? | " NULLS LAST")?
_limit: (" LIMIT " INTEGER (" OFFSET " INTEGER)?)?
_not: ("NOT ")?
_collate: (" COLLATE " COLLATION)?
case: "CASE " (v1 " WHEN " | "WHEN ") boolp " THEN " v1 {r.at_most(case_when, MAX_WHEN - 1)} (" ELSE " v1)? " END"
atom: column_ref | NUMBER | STRING | LITERAL_WORD
column_ref: COLUMN | qualifier "." COLUMN
qualifier: ALIAS | TABLE
COMPARE: " = " | " <> " | " <= " | " >= " | " < " | " > "
MATCH_OP: " NOT LIKE " | " NOT GLOB " | " LIKE " | " GLOB "
BETWEEN_OP: " NOT BETWEEN " | " BETWEEN "
IN_OP: " NOT IN " | " IN "
OP: " + " | " - " | " * " | " / " | " % " | " || "
COLLATION: "NOCASE" | "BINARY" | "RTRIM"
LITERAL_WORD: "CURRENT_TIMESTAMP" | "CURRENT_DATE" | "CURRENT_TIME" | "NULL" | "TRUE" | "FALSE"
MIN_MAX: "MIN" | "MAX"
NUMBER: /[0-9]{{1,15}}(\.[0-9]{{0,8}})?/
INTEGER: /[0-9]{{1,9}}/
""".strip()


def rules(max_string: int | None = None) -> str:
    """The rule text of the canonical grammar (names still to be added by `sql_grammar`)."""
    r = Repeats()
    fixed = _fixed(r)
    body = [_selects(r), _conditions(r), _values(r), _calls(r)]
    rep = "*" if max_string is None else "{0,%d}" % max_string
    words = [
        _words("TYPE_NAME", TYPES), _words("AGG_1", AGG_1), _words("FUNC_0", FUNCS_0), _words("FUNC_1", FUNCS_1),
        _words("FUNC_1_2", FUNCS_1_2), _words("FUNC_2", FUNCS_2), _words("FUNC_2_3", FUNCS_2_3),
        _words("FUNC_3", FUNCS_3), _words("FUNC_2_N", FUNCS_2_N), _words("FUNC_1_N", FUNCS_1_N),
        _words("FUNC_0_N", FUNCS_0_N),
    ]
    return "\n".join([fixed, f"STRING: /'([^']|''){rep}'/", *body, *r.rules, *words]) + "\n"
