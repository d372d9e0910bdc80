"""What a run does not hold itself: gold answers and SQL databases; and its rendered messages.

The messages are a pure function of the run's contract.json and a sample's inputs
(`taskc.compiler.messages.render_messages`); a sql row also needs its database's DDL. Gold answers
and databases live beside the spec, which a run folder does not record: the viewer looks for spec
files named like the task (the --specs paths, else `specs/` and `.` under the current folder and
under the runs folder's parent), reads the test split the spec declares with the compiler's
reader, and uses it only when it is the run's own data: the same sha256 and row count as
contract.json records. Gold values are parsed by the run's own output declaration. When nothing
matches, the page says why and shows what the samples hold.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from taskc.compiler.output import OutputDecl
from taskc.compiler.sql import Database

_NAME = re.compile(r"^name:\s*[\"']?([^\"'\s#]+)", re.M)


def output_decl(body: dict[str, Any]) -> OutputDecl:
    """The output declaration recorded in contract.json."""
    out = body.get("output") or {}
    return OutputDecl(kind=out.get("kind", "text"), labels=tuple(out.get("labels") or ()),
                      tools=tuple(out.get("tools") or ()), schema=out.get("schema"),
                      database=out.get("database"), dialect=out.get("dialect"))


@dataclass(frozen=True)
class Resolved:
    """The run's test split found beside a spec (None: not found, `note` says why)."""

    note: str
    body: dict[str, Any] = field(default_factory=dict)
    rows: tuple[dict[str, Any], ...] | None = None  # renamed to input names and `answer`
    gold: tuple[Any, ...] = ()
    texts: tuple[str, ...] = ()  # gold as the decoder emits it
    base_dir: Path | None = None
    _databases: dict[str, Database | None] = field(default_factory=dict, compare=False, repr=False)  # a cache

    @property
    def found(self) -> bool:
        """Whether gold is available."""
        return self.rows is not None

    def gold_value(self, index: int) -> Any:
        """The parsed gold value of test row `index` (None when unknown)."""
        return self.gold[index] if self.found and 0 <= index < len(self.gold) else None

    def gold_text(self, index: int) -> str | None:
        """The gold answer of test row `index` as the constrained decoder emits it (None when unknown)."""
        return self.texts[index] if self.found and 0 <= index < len(self.texts) else None

    def database(self, inputs: dict[str, Any] | None, index: int | None = None) -> Database | None:
        """The SQLite database of a sql row (from its inputs, or test row `index`), when it is the
        one the run used (same sha256 as contract.json records); None otherwise."""
        from taskc.compiler.prompts import render
        from taskc.compiler.sql import open_database

        template = (self.body.get("output") or {}).get("database")
        if self.base_dir is None or not template:
            return None
        if inputs is None and index is not None and self.found and 0 <= index < len(self.rows):
            inputs = self.rows[index]
        if inputs is None:
            return None
        try:
            key = render(template, {k: inputs.get(k) for k in self.body.get("inputs", {})}).strip()
        except Exception:  # noqa: BLE001 - a template that no longer renders means no database
            return None
        if key not in self._databases:
            want = ((self.body.get("databases") or {}).get(key) or {}).get("sha256")
            try:
                db = open_database(key, (self.base_dir / key).resolve())
            except Exception:  # noqa: BLE001 - missing or unreadable: not reachable
                db = None
            self._databases[key] = db if db is not None and (want is None or db.sha256 == want) else None
        return self._databases[key]


def _serialize(output: OutputDecl, value: Any) -> str:
    try:
        return output.serialize(value)
    except (AttributeError, KeyError, TypeError):
        return str(value)


class ContractFinder:
    """Finds the test split of each contract id once (thread-safe)."""

    def __init__(self, search: Sequence[Path]):
        self.search = [Path(p) for p in search]
        self._found: dict[str, Resolved] = {}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def specs_named(self, task: str) -> list[Path]:
        """Spec files in the search places whose top-level `name:` is `task`."""
        files: list[Path] = []
        for place in self.search:
            if place.is_file():
                files.append(place)
            elif place.is_dir():
                files.extend(sorted(p for p in place.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        out = []
        for path in dict.fromkeys(p.resolve() for p in files):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            m = _NAME.search(text)
            if m and m.group(1) == task:
                out.append(path)
        return out

    def resolve(self, contract_id: str, body: dict[str, Any] | None) -> Resolved:
        """The test split of a contract (cached; read once)."""
        with self._lock:
            if contract_id in self._found:
                return self._found[contract_id]
            lock = self._locks.setdefault(contract_id, threading.Lock())
        with lock:
            if contract_id not in self._found:
                self._found[contract_id] = self._resolve(body)
            return self._found[contract_id]

    def _resolve(self, body: dict[str, Any] | None) -> Resolved:
        if not body:
            return Resolved("gold not available: the run has no contract.json")
        want = (body.get("data") or {}).get("test") or {}
        name = str(body.get("name") or "")
        candidates = self.specs_named(name)
        if not candidates or not want.get("sha256"):
            where = ", ".join(str(p) for p in self.search) or "nowhere"
            why = f"no spec named '{name}' found (looked in {where})" if want.get("sha256") else \
                "contract.json does not record its test data"
            return Resolved(f"gold not available: {why}; showing what the samples hold", body)
        problems = []
        for spec in candidates:
            found = _read_test_split(spec, body, want)
            if isinstance(found, str):
                problems.append(f"{spec}: {found}")
            else:
                return found
        return Resolved("gold not available: " + "; ".join(problems) + "; showing what the samples hold", body)


def _read_test_split(spec: Path, body: dict[str, Any], want: dict[str, Any]) -> Resolved | str:
    """The run's test split read through `spec`, or why it is not the run's."""
    from taskc.compiler.data import DataError, read_split
    from taskc.errors import SpecError
    from taskc.spec.load import load_spec

    try:
        loaded = load_spec(spec)
    except SpecError:
        return "not a readable spec"
    data = loaded.sections.get("data")
    declared = getattr(data, "test", None) if data is not None else None
    if declared is None:
        return "no test split declared"
    try:
        split = read_split("test", declared, loaded.base_dir, loaded.source.path)
    except DataError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any unreadable data is only a note in the viewer
        return f"cannot read its test data ({type(exc).__name__})"
    if split.sha256 != want.get("sha256"):
        return f"its test data ({split.shown}) changed since this run (sha256 differs)"
    if want.get("rows") is not None and len(split.rows) != want["rows"]:
        return f"its test split has {len(split.rows)} rows, the run's had {want['rows']}"
    columns = want.get("columns") or {}
    names = list(body.get("inputs") or {}) + ["answer"]
    mapping = {n: columns.get(n, n) for n in names}
    rows = tuple({n: row.get(col) for n, col in mapping.items()} for row in split.rows)
    output = output_decl(body)
    gold = tuple(output.parse_gold(row["answer"])[0] for row in rows)
    texts = tuple(_serialize(output, v) for v in gold)
    return Resolved(f"gold from {split.shown} (the run's own test data: same sha256)", body, rows, gold, texts,
                    loaded.base_dir)


def render_messages(body: dict[str, Any], inputs: dict[str, Any], resolved: Resolved) -> tuple[list[dict[str, str]], str | None]:
    """The chat messages a row sent, rendered from the run's contract.json and the sample's
    inputs, and a note when something could not be rendered as sent (sql: no database)."""
    from taskc.compiler.messages import render_messages as render

    ddl = None
    note = None
    if (body.get("output") or {}).get("kind") == "sql":
        db = resolved.database(inputs)
        ddl = db.ddl if db else None
        if db is None:
            note = "the database is not reachable: {{ schema }} is shown empty"
    return render(body, inputs, ddl), note


def default_search(runs_root: Path, cwd: Path, given: Iterable[Path] = ()) -> list[Path]:
    """Where specs are looked for: the --specs paths, else specs/ and . under cwd and the runs' parent."""
    given = [Path(p) for p in given]
    if given:
        return given
    out: list[Path] = []
    for base in (cwd, runs_root.resolve().parent):
        for place in (base / "specs", base):
            if place not in out:
                out.append(place)
    return out
