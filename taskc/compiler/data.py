"""Read a data split (csv, jsonl, json) into rows, with the file line of each row for errors."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskc.errors import Diagnostic
from taskc.spec.model import DataFile


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
    """The split cannot be read at all (missing file, bad format)."""

    def __init__(self, message: str, column_problem: str | None = None):
        super().__init__(message)
        self.column_problem = column_problem


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


def read_split(name: str, declared: DataFile, base_dir: Path, shown_base: str) -> Split:
    """Read `declared` relative to `base_dir`; raise DataError on a missing or unreadable file."""
    path = (base_dir / declared.file).resolve() if not Path(declared.file).is_absolute() else Path(declared.file)
    shown = _shown(shown_base, declared.file)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file not found: {shown}") from None
    except OSError as exc:
        raise DataError(f"cannot read data file {shown}: {exc.strerror}") from None
    fmt = _format(path, declared.format)
    try:
        text = raw.decode(declared.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"cannot decode {shown} as {declared.encoding}: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if fmt == "csv":
        records, lines, fields = _read_csv(text, path)
    elif fmt == "jsonl":
        records, lines, fields = _read_jsonl(text, shown)
    else:
        records, lines, fields = _read_json(text, shown, declared.pointer)
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


def _read_csv(text: str, path: Path) -> tuple[list[dict], list[int], list[str]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return [], [], []
    records: list[dict] = []
    lines: list[int] = []
    start = reader.line_num + 1
    for row in reader:
        if not row:
            start = reader.line_num + 1
            continue
        records.append(dict(zip(header, row)))
        lines.append(start)
        start = reader.line_num + 1
    return records, lines, header


def _read_jsonl(text: str, shown: str) -> tuple[list[dict], list[int], list[str]]:
    records: list[dict] = []
    lines: list[int] = []
    fields: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
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
        value = resolve_pointer(value, pointer)
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
