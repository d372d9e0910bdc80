"""Load YAML into plain Python values plus the line and column of every key and value.

PyYAML's composer gives nodes with marks; we build the values ourselves so that duplicate keys
and non-standard tags (`!!python/object`, `!custom`) become diagnostics instead of silently
winning or executing anything. Building is bounded: an alias is expanded at every use, so the
values built through aliases are counted (an alias bomb stops at MAX_ALIAS_VALUES), an alias
inside its own anchor is an error, and nesting stops at MAX_DEPTH.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from taskc.errors import Diagnostic

Path_ = tuple[Any, ...]

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Values built through aliases, counted at every use (a 9 x 9 alias bomb would build 387 million).
MAX_ALIAS_VALUES = 100_000
#: Levels of nesting (mappings and lists); deeper documents would exhaust Python's stack later on.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and where each piece of it came from.

    `values[path]` is the (line, col) of the value at `path` (a tuple of keys and list indices);
    `keys[path]` the (line, col) of the mapping key that introduces it. `block[path]` is True for
    block scalars (`|`, `>`), whose text starts on the line after the mark.
    """

    path: str
    data: Any
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    styles: dict[Path_, str | None] = field(default_factory=dict)
    lines: tuple[str, ...] = ()

    def at(self, path: Path_, message: str, *, key: bool = False) -> Diagnostic:
        """A diagnostic at `path`'s key (key=True) or value, falling back to the nearest parent."""
        probe = tuple(path)
        while True:
            table = self.keys if key and probe in self.keys else self.values
            if probe in table:
                line, col = table[probe]
                return Diagnostic(self.path, line, col, message)
            if not probe:
                return Diagnostic(self.path, 1, 1, message)
            probe = probe[:-1]
            key = True

    def text_position(self, path: Path_, offset_line: int, offset_col: int) -> tuple[int, int]:
        """File position of (line, col) counted inside the string at `path` (both 1-based)."""
        line, col = self.values.get(tuple(path), (1, 1))
        style = self.styles.get(tuple(path))
        if style in ("|", ">"):
            # Block scalar: the mark is at '|'; content starts on the next line, indented.
            file_line = line + offset_line
            source = self.lines[file_line - 1] if 0 < file_line <= len(self.lines) else ""
            indent = len(source) - len(source.lstrip(" "))
            return file_line, indent + offset_col
        quote = 1 if style in ("'", '"') else 0
        if offset_line == 1:
            return line, col + quote + offset_col - 1
        return line + offset_line - 1, offset_col


def load_yaml(text: str, path: str) -> tuple[Located | None, list[Diagnostic]]:
    """Parse `text`; return the located document and the diagnostics found (all of them)."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [Diagnostic(path, line, col, f"invalid YAML: {problem}")]
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML always marks its errors
        return None, [Diagnostic(path, 1, 1, f"invalid YAML: {exc}")]
    doc = Located(path=path, data=None)
    problems: list[Diagnostic] = []
    if root is None:
        return Located(path=path, data={}, lines=tuple(text.splitlines())), problems
    builder = _Builder(doc, problems, text)
    try:
        data = builder.build(root, ())
    except _AliasBomb as bomb:
        anchor, (line, col) = _alias_use(text, bomb.node)
        return None, [Diagnostic(path, line, col, f"YAML alias '*{anchor}' expands to more than {MAX_ALIAS_VALUES:,} "
                                                  "values (aliases are expanded at every use); write the values out")]
    located = Located(
        path=path, data=data, values=doc.values, keys=doc.keys, styles=doc.styles, lines=tuple(text.splitlines())
    )
    return located, problems


class _AliasBomb(Exception):
    def __init__(self, node: yaml.Node):
        self.node = node


def _alias_use(text: str, node: yaml.Node) -> tuple[str, tuple[int, int]]:
    """The anchor of `node` and where it is first used as an alias (the composer keeps no
    marks of aliases, so the events are read again; only ever on the error path)."""
    mark = (node.start_mark.line, node.start_mark.column)
    anchor = "?"
    found = False
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if not found:
                if (not isinstance(event, yaml.AliasEvent) and getattr(event, "anchor", None)
                        and (event.start_mark.line, event.start_mark.column) == mark):
                    anchor, found = event.anchor, True
            elif isinstance(event, yaml.AliasEvent) and event.anchor == anchor:
                return anchor, (event.start_mark.line + 1, event.start_mark.column + 1)
    except yaml.YAMLError:  # pragma: no cover - the text composed once already
        pass
    return anchor, (mark[0] + 1, mark[1] + 1)


class _Builder:
    def __init__(self, doc: Located, problems: list[Diagnostic], text: str = ""):
        self.doc = doc
        self.problems = problems
        self.text = text
        self.constructor = SafeConstructor()
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.aliases: list[yaml.Node] = []
        self.expanded = 0

    def _pos(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def build(self, node: yaml.Node, path: Path_) -> Any:
        key = id(node)
        if key in self.active:
            anchor, (line, col) = _alias_use(self.text, node)
            self.problems.append(Diagnostic(self.doc.path, line, col,
                                            f"recursive YAML alias '*{anchor}': it refers to a value that contains it"))
            return None
        if len(path) > MAX_DEPTH:
            line, col = self._pos(node)
            self.problems.append(Diagnostic(self.doc.path, line, col, f"YAML nesting deeper than {MAX_DEPTH} levels"))
            return None
        alias = key in self.seen
        if alias:
            self.aliases.append(node)
        if self.aliases:
            self.expanded += 1
            if self.expanded > MAX_ALIAS_VALUES:
                raise _AliasBomb(self.aliases[0])
        self.seen.add(key)
        self.active.add(key)
        try:
            return self._build(node, path)
        finally:
            self.active.discard(key)
            if alias:
                self.aliases.pop()

    def _build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.values[path] = self._pos(node)
        if node.tag not in _STANDARD_TAGS:
            line, col = self._pos(node)
            self.problems.append(
                Diagnostic(self.doc.path, line, col, f"unsupported YAML tag '{node.tag}': specs are plain data")
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        self.doc.styles[path] = node.style
        return self.constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                line, col = self._pos(key_node)
                self.problems.append(Diagnostic(self.doc.path, line, col, "YAML merge keys ('<<') are not supported"))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = self._pos(key_node)
                self.problems.append(Diagnostic(self.doc.path, line, col, "a mapping key must be a plain scalar"))
                continue
            key = self.constructor.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key) if key is not None else "null"
            if key in out:
                line, col = self._pos(key_node)
                first = self.doc.keys[path + (key,)]
                self.problems.append(
                    Diagnostic(self.doc.path, line, col, f"duplicate key '{key}' (first defined at line {first[0]})")
                )
                continue
            self.doc.keys[path + (key,)] = self._pos(key_node)
            out[key] = self.build(value_node, path + (key,))
        return out
