"""Load YAML into plain Python values plus the line and column of every key and value.

PyYAML's composer gives nodes with marks; we build the values ourselves so that duplicate keys
and non-standard tags (`!!python/object`, `!custom`) become diagnostics instead of silently
winning or executing anything.
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
    builder = _Builder(doc, problems)
    data = builder.build(root, ())
    located = Located(
        path=path, data=data, values=doc.values, keys=doc.keys, styles=doc.styles, lines=tuple(text.splitlines())
    )
    return located, problems


class _Builder:
    def __init__(self, doc: Located, problems: list[Diagnostic]):
        self.doc = doc
        self.problems = problems
        self.constructor = SafeConstructor()

    def _pos(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def build(self, node: yaml.Node, path: Path_) -> Any:
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
