"""The canonical SQL serialization: what it writes, what it refuses, and that it never changes a
query's result (every gold query of examples/text2sql, run on its real database)."""

from __future__ import annotations

import re
import sqlite3

import pytest

from taskc.constraints import _sql_canonical_rules as rules
from taskc.constraints.canonical_sql import NotCanonical, canonical_sql
from taskc.constraints.sql_grammar import sql_grammar

pytest.importorskip("sqlglot")
lark = pytest.importorskip("lark")

TABLES = {"Singer": ["Singer_ID", "Name", "Country", "Age"], "concert": ["concert_ID", "Stadium_ID", "Year"],
          "my table": ["first name", "order", "plain"]}


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("canon") / "small.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE Singer (Singer_ID INT, Name TEXT, Country TEXT, Age INT);
        CREATE TABLE concert (concert_ID INT, Stadium_ID INT, Year TEXT);
        CREATE TABLE "my table" ("first name" TEXT, "order" INT, plain TEXT);
        INSERT INTO Singer VALUES (1, 'Ann', 'France', 30), (2, 'Bob', 'USA', 25), (3, 'O''Brien', 'France', NULL),
                                  (4, 'Cid', NULL, 41), (5, 'Dee', 'USA', 25);
        INSERT INTO concert VALUES (10, 1, '2014'), (11, 2, '2015'), (12, 1, '2015'), (13, 9, '2014');
        INSERT INTO "my table" VALUES ('x', 1, 'p'), ('y', NULL, 'q');
    """)
    con.commit()
    con.close()
    return path


CASES = [
    ("select name , country from singer where age > 20 order by age asc",
     "SELECT Name, Country FROM Singer WHERE Age > 20 ORDER BY Age"),
    ('SELECT T1.name FROM singer AS t1 JOIN concert AS T2 ON t1.singer_id = T2.stadium_id WHERE t2.year = "2014"',
     "SELECT T1.Name FROM Singer AS T1 JOIN concert AS T2 ON T1.Singer_ID = T2.Stadium_ID WHERE T2.Year = '2014'"),
    ("SELECT count(*) FROM singer WHERE country = \"France\" AND name != 'O''Brien';",
     "SELECT COUNT(*) FROM Singer WHERE Country = 'France' AND Name <> 'O''Brien'"),
    ("SELECT name FROM singer WHERE singer_id NOT IN (SELECT stadium_id FROM concert)",
     "SELECT Name FROM Singer WHERE Singer_ID NOT IN (SELECT Stadium_ID FROM concert)"),
    ("SELECT name FROM singer, concert WHERE singer.singer_id = concert.stadium_id",
     "SELECT Name FROM Singer, concert WHERE Singer.Singer_ID = concert.Stadium_ID"),
    ("SELECT a.name FROM singer a INNER JOIN concert b ON a.singer_id = b.stadium_id "
     "LEFT OUTER JOIN concert c ON c.year = a.age",
     "SELECT T1.Name FROM Singer AS T1 JOIN concert AS T2 ON T1.Singer_ID = T2.Stadium_ID "
     "LEFT JOIN concert AS T3 ON T3.Year = T1.Age"),
    ("select name from singer order by name limit 2, 5", "SELECT Name FROM Singer ORDER BY Name LIMIT 5 OFFSET 2"),
    ('SELECT [first name], `order`, plain FROM [my table] WHERE "order" IS NOT NULL',
     'SELECT "first name", "order", plain FROM "my table" WHERE "order" IS NOT NULL'),
    ("SELECT name FROM singer WHERE age NOT BETWEEN 20 AND 30 AND name NOT LIKE 'x%' AND country ISNULL",
     "SELECT Name FROM Singer WHERE Age NOT BETWEEN 20 AND 30 AND Name NOT LIKE 'x%' AND Country IS NULL"),
    ("SELECT substr(name, 1, 2), ifnull(age, 0), cast(age as int), max(age, 1) FROM singer",
     "SELECT SUBSTRING(Name, 1, 2), COALESCE(Age, 0), CAST(Age AS INTEGER), MAX(Age, 1) FROM Singer"),
    ("SELECT country FROM singer GROUP BY country HAVING count(*) >= 2 ORDER BY count(*) DESC LIMIT 1",
     "SELECT Country FROM Singer GROUP BY Country HAVING COUNT(*) >= 2 ORDER BY COUNT(*) DESC LIMIT 1"),
    ("SELECT name FROM singer WHERE age = (SELECT max(age) FROM singer AS s) UNION SELECT year FROM concert",
     "SELECT Name FROM Singer WHERE Age = (SELECT MAX(Age) FROM Singer AS T1) UNION SELECT Year FROM concert"),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_canonical_form(query, expected, small_db) -> None:
    canonical = canonical_sql(query, TABLES)
    assert canonical == expected
    assert canonical_sql(canonical, TABLES) == canonical  # idempotent
    con = sqlite3.connect(small_db)
    try:
        assert con.execute(canonical).fetchall() == con.execute(query).fetchall()
    finally:
        con.close()
    lark.Lark(sql_grammar(TABLES, form="canonical"), parser="earley").parse(canonical)


REFUSED = [
    ("SELECT count(*) AS n FROM singer", "a result-column alias"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "a WITH clause"),
    ("SELECT name FROM nosuch", "no table 'nosuch' in the schema"),
    ("SELECT nosuchcol FROM singer", "no column 'nosuchcol' in the schema"),
    ("SELECT CAST(age AS NUMERIC) FROM singer", "CAST to DECIMAL (sqlglot would change its SQLite affinity)"),
    ("SELECT CAST(age AS DATE) FROM singer", "CAST to DATE (sqlglot would change its SQLite affinity)"),
    ("DELETE FROM singer", "not a SELECT query (Delete)"),
    ("SELECT 1; SELECT 2", "2 statements, not one"),
    ("SELECT name FROM singer AS concert", "alias 'concert' is also a table name"),
    ("  ;  ", "empty query"),
]


@pytest.mark.parametrize(("query", "reason"), REFUSED)
def test_refused_with_the_reason(query, reason) -> None:
    with pytest.raises(NotCanonical) as err:
        canonical_sql(query, TABLES)
    assert str(err.value) == reason


def test_a_query_sqlglot_cannot_parse_is_refused_with_its_message() -> None:
    with pytest.raises(NotCanonical) as err:
        canonical_sql("SELECT name FROM singer WHERE", TABLES)
    assert str(err.value).startswith("sqlglot cannot parse it: ") and "Line 1, Col: 29" in str(err.value)


def test_sqlglot_writes_the_function_names_the_grammar_lists() -> None:
    """The canonical grammar spells functions as sqlglot writes them; a new sqlglot that spelled
    one differently would make canonical gold answers fall outside the grammar."""
    arity = {**{f: 0 for f in rules.FUNCS_0}, **{f: 1 for f in rules.FUNCS_1 + rules.FUNCS_1_2 + rules.AGG_1},
             **{f: 2 for f in rules.FUNCS_2 + rules.FUNCS_2_3 + rules.FUNCS_2_N + rules.FUNCS_1_N},
             **{f: 3 for f in rules.FUNCS_3}, **{f: 1 for f in rules.FUNCS_0_N}}
    for name, n in arity.items():
        args = ", ".join(["Age", "1", "2"][:n])
        out = canonical_sql(f"SELECT {name.lower()}({args}) FROM singer", TABLES)
        assert re.fullmatch(rf"SELECT {name}\({args}\) FROM Singer", out), (name, out)
    for kind, spelled in (("int", "INTEGER"), ("float", "REAL"), ("varchar(10)", "TEXT"), ("blob", "BLOB")):
        assert canonical_sql(f"SELECT cast(age AS {kind}) FROM singer", TABLES) == f"SELECT CAST(Age AS {spelled}) FROM Singer"


def _multiset(rows):
    return sorted(map(repr, rows))


def test_every_text2sql_gold_query_and_its_canonical_form_give_identical_results(text2sql) -> None:
    """The canonical form changes no score: run on the real database, each of the 484 gold
    queries and its canonical form return the same rows (as a multiset; in the same order when
    the query has an ORDER BY), and the canonical form is in the canonical grammar."""
    cons = {db: sqlite3.connect(f"{info['path'].resolve().as_uri()}?mode=ro", uri=True)
            for db, info in text2sql["dbs"].items()}
    parsers = {db: lark.Lark(info["canonical"].grammar, parser="earley") for db, info in text2sql["dbs"].items()}
    try:
        differ = []
        for row in text2sql["rows"]:
            db = row["db_id"]
            canonical = canonical_sql(row["query"], text2sql["dbs"][db]["tables"])
            assert canonical_sql(canonical, text2sql["dbs"][db]["tables"]) == canonical
            gold, mine = cons[db].execute(row["query"]).fetchall(), cons[db].execute(canonical).fetchall()
            same = gold == mine if "order by" in row["query"].lower() else _multiset(gold) == _multiset(mine)
            if not same:
                differ.append((row["query"], canonical))
            parsers[db].parse(canonical)
        assert differ == []
        assert len(text2sql["rows"]) == 484
    finally:
        for con in cons.values():
            con.close()
