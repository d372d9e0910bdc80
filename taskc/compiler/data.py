"""Read a data split (csv, jsonl, json) into rows, with the file line of each row for errors.

The file must lie inside the project root (taskc.spec.paths). A CSV is read strictly: a
duplicate header, a row with more or fewer fields than the header, an unterminated quote or a
field longer than MAX_FIELD_CHARS is an error at its row, and so is a split with no rows."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from taskc.errors import Diagnostic
from taskc.spec.paths import OutsideProject, ProjectRoot, regular_file_problem

if TYPE_CHECKING:  # an annotation only: loading a cached contract needs no pydantic
    from taskc.spec.model import DataFile

#: The longest CSV field taken (about a million tokens); longer ones are errors at their row.
MAX_FIELD_CHARS = 4_000_000
#: Row problems reported per file before the rest are counted.
MAX_ROW_PROBLEMS = 20


@dataclass(frozen=True)
class Split:
    """The rows of one split, renamed by `columns`; `lines[i]` is row i's line in the file."""

    name: str
    path: Path
    shown: str
    rows: tuple[dict[str, Any], ...]
    lines: tuple[int, ...]
    fields: tuple[str, ...]
    sha256: str

    def where(self, index: int, message: str) -> Diagnostic:
        """A diagnostic pointing at row `index` in the data file."""
        return Diagnostic(self.shown, self.lines[index] if index < len(self.lines) else 1, 1, message)


class DataError(Exception):
    """The split cannot be read (missing file, bad format). `diagnostics`, when given, locate
    the problems in the data file itself (each at its row)."""

    def __init__(self, message: str, column_problem: str | None = None,
                 diagnostics: tuple[Diagnostic, ...] = ()):
        super().__init__(message)
        self.column_problem = column_problem
        self.diagnostics = diagnostics


def _format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    raise DataError(f"cannot tell the format of '{path.name}' from its extension; set format: csv, jsonl or json")


def read_split(name: str, declared: DataFile, base_dir: Path, shown_base: str,
               root: ProjectRoot | None = None) -> Split:
    """Read `declared` relative to `base_dir`, confined to `root` when given; raise DataError on
    a file outside it, a missing or unreadable file, or rows that cannot be read."""
    if root is not None:
        try:
            path = root.confine(base_dir, declared.file, "data file")
        except OutsideProject as exc:
            raise DataError(str(exc)) from None
    else:
        path = (base_dir / declared.file).resolve()
    shown = _shown(shown_base, declared.file)
    problem = regular_file_problem(path)
    if problem:
        raise DataError(f"cannot read data file {shown}: it {problem}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file not found: {shown}") from None
    except OSError as exc:
        raise DataError(f"cannot read data file {shown}: {exc.strerror}") from None
    written = Path(declared.file)  # the format and delimiter go by the name written, not a link's target
    fmt = _format(written, declared.format)
    try:
        text = raw.decode(declared.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"cannot decode {shown} as {declared.encoding}: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        if fmt == "csv":
            records, lines, fields = _read_csv(text, written, shown, name)
        elif fmt == "jsonl":
            records, lines, fields = _read_jsonl(text, shown)
        else:
            records, lines, fields = _read_json(text, shown, declared.pointer)
    except RecursionError:
        raise DataError(f"{shown}: JSON nested too deeply to read") from None
    if not records:
        raise DataError(f"{shown} has no rows: the {name} split needs at least one")
    if declared.limit is not None:
        records, lines = records[: declared.limit], lines[: declared.limit]
    return Split(
        name=name,
        path=path,
        shown=shown,
        rows=tuple(records),
        lines=tuple(lines),
        fields=tuple(fields),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _shown(shown_base: str, file: str) -> str:
    base = Path(shown_base).parent
    joined = base / file
    parts: list[str] = []
    for part in joined.parts:
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return str(Path(*parts)) if parts else file


def _read_csv(text: str, path: Path, shown: str, split: str) -> tuple[list[dict], list[int], list[str]]:
    """Rows of a CSV (TSV by extension). The csv module's field limit is raised to the file's
    length for the read (so it never stops it), and fields past MAX_FIELD_CHARS are reported."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, len(text) + 1))
    try:
        return _csv_rows(csv.reader(_lines(text), delimiter=delimiter, strict=True), shown, split)
    finally:
        csv.field_size_limit(previous)


_NEWLINE = re.compile(r"\r\n|\r|\n")


def _lines(text: str):
    """The lines of `text`, ends kept, split where a file opened with newline="" splits them
    (\\r\\n, \\r, \\n; not at the other characters str.splitlines takes for line ends)."""
    start = 0
    for match in _NEWLINE.finditer(text):
        yield text[start:match.end()]
        start = match.end()
    if start < len(text):
        yield text[start:]


def _csv_rows(reader, shown: str, split: str) -> tuple[list[dict], list[int], list[str]]:
    problems: list[Diagnostic] = []
    count = 0
    first_unshown = 1

    def problem(line: int, message: str) -> None:
        nonlocal count, first_unshown
        count += 1
        if count <= MAX_ROW_PROBLEMS:
            problems.append(Diagnostic(shown, line, 1, message))
        elif count == MAX_ROW_PROBLEMS + 1:
            first_unshown = line

    header: list[str] = []
    records: list[dict] = []
    lines: list[int] = []
    start = 1
    try:
        header = next(reader, [])
        firsts: dict[str, int] = {}
        for number, column in enumerate(header, start=1):
            if column in firsts:
                problem(1, f"duplicate column '{column}' in the header (columns {firsts[column]} and {number})")
            firsts.setdefault(column, number)
        start = reader.line_num + 1
        for row in reader:
            if row:
                index = len(records)
                if len(row) != len(header):
                    problem(start, f"row has {len(row)} fields but the header has {len(header)} ({split} row {index})")
                for column, value in zip(header, row):
                    if len(value) > MAX_FIELD_CHARS:
                        problem(start, f"field '{column}' holds {len(value):,} characters, more than the "
                                       f"{MAX_FIELD_CHARS:,} a field may hold ({split} row {index})")
                records.append(dict(zip(header, row)))
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        problem(start, f"{_csv_words(str(exc))} ({split} row {len(records)})" if header else _csv_words(str(exc)))
    if count > MAX_ROW_PROBLEMS:
        problems.append(Diagnostic(shown, first_unshown, 1, f"... and {count - MAX_ROW_PROBLEMS} more row problems in {shown}"))
    if problems:
        raise DataError(f"{shown}: {problems[0].message}", diagnostics=tuple(problems))
    return records, lines, header


def _csv_words(message: str) -> str:
    if message == "unexpected end of data":
        return "a quoted field starts in this row and is never closed"
    if message.endswith("expected after '\"'"):
        return f"invalid CSV: text after a closing quote ({message})"
    return f"invalid CSV: {message}"


_INT64 = 2.0 ** 63


def _past_int64(value: Any) -> bool:
    """Whether a value orjson read holds a float of magnitude 2**63 or more: where orjson turns an
    integer too long for 64 bits into a float (json keeps it an int)."""
    kind = type(value)
    if kind is float:
        return not -_INT64 < value < _INT64
    if kind is dict:
        return any(map(_past_int64, value.values()))
    if kind is list:
        return any(map(_past_int64, value))
    return False


def _json_line(line: str) -> Any:
    """One JSONL line as Python's json reads it: through orjson (several times faster) unless the
    line holds what orjson reads differently or not at all (an integer past 64 bits, which it
    makes a float; NaN, 1e400, a lone surrogate), which go to json, errors included."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
    return json.loads(line) if _past_int64(value) else value


def _read_jsonl(text: str, shown: str) -> tuple[list[dict], list[int], list[str]]:
    records: list[dict] = []
    lines: list[int] = []
    fields: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = _json_line(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{shown}:{number}:{exc.colno}: invalid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise DataError(f"{shown}:{number}:1: each line must be a JSON object")
        records.append(value)
        lines.append(number)
        fields.update(dict.fromkeys(value))
    return records, lines, list(fields)


def _read_json(text: str, shown: str, pointer: str) -> tuple[list[dict], list[int], list[str]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{shown}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if pointer:
        try:
            value = resolve_pointer(value, pointer)
        except KeyError as exc:
            raise DataError(f"{shown}: {exc.args[0]}") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DataError(f"{shown} must hold a JSON list of objects")
    fields: dict[str, None] = {}
    for record in value:
        fields.update(dict.fromkeys(record))
    return list(value), [1] * len(value), list(fields)


def resolve_pointer(document: Any, pointer: str) -> Any:
    """Resolve an RFC 6901 JSON pointer; raise KeyError naming the missing step."""
    if pointer in ("", "/"):
        return document
    if not pointer.startswith("/"):
        raise KeyError(f"a JSON pointer starts with '/': {pointer!r}")
    node = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(f"JSON pointer {pointer!r} has no '{token}'")
    return node
