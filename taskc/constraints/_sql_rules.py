"""The schema-independent rules of the SQLite grammar (see `sql_grammar`), generated from bounds.

Every repetition and every nesting has a bound, except the contents of a string literal, so a
model cannot loop on a list, an operator chain or parentheses: a random-weight model, which
repeats whatever loop it finds (``a/b/a/b/...``), is forced onward. The bounds sit well above
the 484 Spider dev queries (at most 3 result columns, 4 tables, 3 OR terms, 3 AND terms, one
level of subquery). String literals stay unbounded: xgrammar computes every mask inside a
bounded string (``'([^']|''){0,64}'``) at run time, about 80 ms per token against 0.05 ms
unbounded, and ``'[^']{0,64}'`` takes it 3 s to compile (bench/RESULTS.md, "Grammars").

Levels. ``select0`` is the outer query; it may hold subqueries (in FROM, IN, EXISTS, or as a
scalar value), each a ``select1``, which holds none. Values nest by level: ``v2`` (operands of
comparisons, result columns) may hold calls and parentheses over ``v1``, which may hold them
over ``v0``, plain columns and literals. ``boolp`` is a parenthesized condition (no subquery).
Repetition is spelt as chains of optional helper rules (`at_most`), the one form that Python
lark, llguidance and xgrammar all read (lark lacks ``{m,n}`` on rules, llguidance ``~ m..n``).
"""

from __future__ import annotations

MAX_COLUMNS = 6  # result columns
MAX_JOINS = 4  # tables after the first
MAX_COMPOUND = 3  # SELECTs joined by UNION / INTERSECT / EXCEPT
MAX_OR, MAX_AND = 3, 4  # terms of a condition
MAX_IN = 8  # values in IN (...)
MAX_ORDER, MAX_GROUP = 3, 3
MAX_OPS = {2: 2, 1: 1, 0: 1}  # arithmetic operators after the first operand, by value level
MAX_WHEN = 3
MAX_ARGS = 3  # arguments of variadic functions (coalesce, printf...)

OR, AND, COMMA = '_WS "OR"i _WS', '_WS "AND"i _WS', '_o "," _o'


class Repeats:
    """The helper rules of one grammar: each `at_most` chain is written once per grammar, so
    the grammar text depends only on the calls made while building it (not on what was built
    before in the process: compiled artifacts must be byte-identical)."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, int, str], str] = {}
        self.rules: list[str] = []

    def at_most(self, item: str, n: int, sep: str = "") -> str:
        """Zero to `n` times ``sep item``: a reference to a chain of helper rules (``_rep3?``).

        Each helper is its own rule (``_rep3: sep item _rep2?``), not inline nested optionals:
        Lark would expand every inline level into alternatives of the enclosing rule, and Earley
        would predict them all at each position (it made parsing 2.5x slower).
        """
        if n <= 0:
            return ""
        key = (item, n, sep)
        if key not in self._names:
            inner = self.at_most(item, n - 1, sep)
            name = f"_rep{len(self.rules)}"
            self.rules.append(f"{name}: {' '.join(x for x in (sep, item, inner) if x)}")
            self._names[key] = name
        return self._names[key] + "?"

    def upto(self, item: str, n: int, sep: str = COMMA) -> str:
        """`item` then at most ``n - 1`` more ``sep item``."""
        return f"{item} {self.at_most(item, n - 1, sep)}".strip()


def _chain(r: Repeats, level: int, term: str, unsigned: str) -> str:
    """An operand then at most MAX_OPS[level] ``op operand``; a ``-`` is never directly followed
    by a sign (``--`` starts a comment in SQL)."""
    step = f'(_o OP _o {term} | _o "-" (_WS {term} | {unsigned}))'
    return f"{term} {r.at_most(step, MAX_OPS[level])}".strip()


def _values(r: Repeats) -> str:
    cast = '"CAST"i _o "(" _o {v} _WS "AS"i _WS TYPE_NAME _o ")"'
    rules = [
        f"v0: {_chain(r, 0, 't0', 'u0')}",
        "t0: SIGN? u0",
        "u0: atom",
        f"v1: {_chain(r, 1, 't1', 'u1')}",
        "t1: SIGN? u1",
        f'u1: atom | call0 | "(" _o v0 _o ")" | {cast.format(v="v0")}',
        f'_u2: atom | call1 | "(" _o v1 _o ")" | case | {cast.format(v="v1")}',
    ]
    for w in (0, 1):
        scalar = ' | "(" _o select1 _o ")"' if w == 0 else ""  # a scalar subquery
        rules += [f"v2_{w}: {_chain(r, 2, f't2_{w}', f'u2_{w}')}", f"t2_{w}: SIGN? u2_{w}", f"u2_{w}: (_u2{scalar}) _collate"]
    return "\n".join(rules)


def _calls(r: Repeats) -> str:
    rules = []
    for level in (0, 1):
        v = f"v{level}"
        args = r.upto(v, MAX_ARGS)
        rules.append(
            f"""call{level}: "count"i _o "(" _o ("*" | _distinct {v}) _o ")"
    | AGG_1 _o "(" _o _distinct {v} _o ")"
    | MIN_MAX _o "(" _o (_distinct {v} | {v} _o "," _o {r.upto(v, MAX_ARGS - 1)}) _o ")"
    | "group_concat"i _o "(" _o ("DISTINCT"i _WS {v} | {v} (_o "," _o {v})?) _o ")"
    | FUNC_0 _o "(" _o ")"
    | FUNC_1 _o "(" _o {v} _o ")"
    | FUNC_1_2 _o "(" _o {v} (_o "," _o {v})? _o ")"
    | FUNC_2 _o "(" _o {v} _o "," _o {v} _o ")"
    | FUNC_2_3 _o "(" _o {v} _o "," _o {v} (_o "," _o {v})? _o ")"
    | FUNC_3 _o "(" _o {v} _o "," _o {v} _o "," _o {v} _o ")"
    | FUNC_2_N _o "(" _o {v} _o "," _o {r.upto(v, MAX_ARGS - 1)} _o ")"
    | FUNC_1_N _o "(" _o {args} _o ")"
    | FUNC_0_N _o "(" _o ({args} _o)? ")\""""
        )
    return "\n".join(rules)


def _conditions(r: Repeats) -> str:
    rules = []
    for name, value, in_body, exists in (
        ("0", "v2_0", "select1 | " + r.upto("v1", MAX_IN), ' | "EXISTS"i _o "(" _o select1 _o ")"'),
        ("1", "v2_1", r.upto("v1", MAX_IN), ""),
        ("p", "v1", r.upto("v1", MAX_IN), ""),
    ):
        paren = "" if name == "p" else ' | "(" _o boolp _o ")"'
        rules += [
            f"bool{name}: {r.upto(f'and{name}', MAX_OR, OR)}",
            f"and{name}: {r.upto(f'pred{name}', MAX_AND, AND)}",
            f"pred{name}: _not ({value} _tail{name}{paren}{exists})",
            f"""_tail{name}: (_o COMPARE _o {value}
    | _WS _not MATCH_OP _WS {value} (_WS "ESCAPE"i _WS STRING)?
    | _WS _not "BETWEEN"i _WS {value} _WS "AND"i _WS {value}
    | _WS _not "IN"i _o "(" _o ({in_body}) _o ")"
    | _WS "IS"i (_WS "NOT"i)? _WS {value}
    | _WS NULL_TEST)?""",
        ]
    return "\n".join(rules)


def _selects(r: Repeats) -> str:
    rules = []
    for w in (0, 1):
        source = f"source{w}"
        joins = r.at_most(f"join_sep {source} _join_constraint{w}", MAX_JOINS)
        sub = ' | "(" _o select1 _o ")" _alias' if w == 0 else ""
        rules += [
            f"select{w}: {r.upto(f'core{w}', MAX_COMPOUND, '_WS compound_op _WS')} _order_by _limit",
            f'core{w}: "SELECT"i _quantifier _WS result_cols{w} _from{w} _where{w} _group_by{w}',
            f"result_cols{w}: {r.upto(f'result_col{w}', MAX_COLUMNS)}",
            f'result_col{w}: "*" | qualifier "." "*" | v2_{w}',
            f'_from{w}: (_WS "FROM"i _WS {source} {joins})?',
            f"{source}: TABLE _alias{sub}",
            f'_join_constraint{w}: (_WS "ON"i _WS bool{w} | _WS "USING"i _o "(" _o {r.upto("COLUMN", 4)} _o ")")?',
            f'_where{w}: (_WS "WHERE"i _WS bool{w})?',
            f'_group_by{w}: (_WS "GROUP"i _WS "BY"i _WS {r.upto("v1", MAX_GROUP)} (_WS "HAVING"i _WS bool{w})?)?',
        ]
    return "\n".join(rules)


def _fixed(r: Repeats) -> str:
    """The rules that do not depend on the nesting level."""
    return rf"""
start: select0 (_o ";")?
compound_op: "UNION"i (_WS "ALL"i)? | "INTERSECT"i | "EXCEPT"i
_quantifier: (_WS SET_QUANTIFIER)?
SET_QUANTIFIER: "DISTINCT"i | "ALL"i
join_sep: _o "," _o | _WS join_op _WS
join_op: ("NATURAL"i _WS)? (("LEFT"i (_WS "OUTER"i)? | "INNER"i | "CROSS"i) _WS)? "JOIN"i
_alias: (_WS ("AS"i _WS)? ALIAS)?
_order_by: (_WS "ORDER"i _WS "BY"i _WS {r.upto("ordering_term", MAX_ORDER)})?
ordering_term: v1 (_WS DIRECTION)? (_WS "NULLS"i _WS NULLS_POS)?
DIRECTION: "ASC"i | "DESC"i
NULLS_POS: "FIRST"i | "LAST"i
_limit: (_WS "LIMIT"i _WS INTEGER ((_WS "OFFSET"i _WS | _o "," _o) INTEGER)?)?
_not: ("NOT"i _WS)?
_distinct: ("DISTINCT"i _WS)?
_collate: (_WS "COLLATE"i _WS COLLATION)?
case: "CASE"i (_WS v1)? {r.upto('_WS "WHEN"i _WS boolp _WS "THEN"i _WS v1', MAX_WHEN, "")} (_WS "ELSE"i _WS v1)? _WS "END"i
atom: column_ref | NUMBER | STRING | DQ_STRING | LITERAL_WORD
column_ref: COLUMN | qualifier "." COLUMN
qualifier: ALIAS | TABLE
MATCH_OP: "LIKE"i | "GLOB"i
NULL_TEST: "ISNULL"i | "NOTNULL"i
COMPARE: "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
OP: "+" | "||" | "*" | "/" | "%"
SIGN: "-" | "+"
COLLATION: "NOCASE"i | "BINARY"i | "RTRIM"i
LITERAL_WORD: "NULL"i | "TRUE"i | "FALSE"i | "CURRENT_TIMESTAMP"i | "CURRENT_DATE"i | "CURRENT_TIME"i
MIN_MAX: "min"i | "max"i
NUMBER: /[0-9]{{1,15}}(\.[0-9]{{0,8}})?|\.[0-9]{{1,8}}/
INTEGER: /[0-9]{{1,9}}/
_o: _WS?
_WS: / {{1,4}}|\n/
""".strip()


def string_terminals(max_chars: int | None = None) -> str:
    """STRING ('...') and DQ_STRING ("...") with doubled-quote escapes, at most `max_chars`
    characters long (an escape counts as one) or unbounded (None)."""
    rep = "*" if max_chars is None else "{0,%d}" % max_chars
    return f"STRING: /'([^']|''){rep}'/\nDQ_STRING: /\"([^\"]|\"\"){rep}\"/"


def rules(max_string: int | None = None) -> str:
    """The rule text (with ``"word"i`` literals still to be made ASCII-only by the caller)."""
    r = Repeats()
    fixed = _fixed(r)  # first: its chains keep the helper numbers they have always had
    body = [_selects(r), _conditions(r), _values(r), _calls(r)]
    return "\n".join([fixed, string_terminals(max_string), *body, *r.rules]) + "\n"
