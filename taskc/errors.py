"""Diagnostics: every problem in a spec, its data or its templates, reported at file:line:col."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem at a place in a file. `line` and `col` are 1-based."""

    path: str
    line: int
    col: int
    message: str

    def format(self) -> str:
        """`path:line:col: error: message`, the form editors and CI logs understand."""
        return f"{self.path}:{self.line}:{self.col}: error: {self.message}"


class SpecError(Exception):
    """Raised with every diagnostic found in one pass; the CLI prints them and exits 2."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class TaskcError(Exception):
    """A user-facing error that is not tied to a spec location (bad flag, missing run, ...)."""
