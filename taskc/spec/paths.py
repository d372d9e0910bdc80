"""The project root, and the rule that keeps every file a spec names inside it.

A spec may come from someone else (a colleague, a public repository) and is run like a Makefile,
so the files it names (data, labels, tools, databases) must lie in the project it belongs to:

- The project root is the nearest folder at or above the spec's folder that holds a `specs/`
  folder; failing that, the current directory when the spec lies inside it; failing that, the
  spec's own folder.
- A named file must lie inside the root as written (no absolute path or `..` leading out) and
  once every symlink is followed.
- `--allow-outside PATH` (repeatable) allows files inside PATH, wherever they are.

Errors name the path and the rule, never anything read from the file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

SPECS_FOLDER = "specs"
_ALLOW_HINT = "pass --allow-outside PATH to allow files elsewhere"


class OutsideProject(ValueError):
    """A file a spec names lies outside the project root (the message says where and why)."""


@dataclass(frozen=True)
class ProjectRoot:
    """Where a spec's files may lie. `path` is absolute as the user reaches it (symlinks kept);
    `reason` says in words how it was chosen; `allowed` holds the --allow-outside paths."""

    path: Path
    reason: str
    allowed: tuple[Path, ...] = ()

    def confine(self, base_dir: Path, name: str, what: str) -> Path:
        """The real path of the file `name` (written in the spec, relative to `base_dir`), or
        OutsideProject when the rule above does not allow it."""
        joined = Path(os.path.abspath(base_dir)) / name
        written = Path(os.path.normpath(joined))
        try:
            real = joined.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise OutsideProject(f"{what} '{name}' cannot be resolved ({_reason(exc)})") from None
        if any(_inside(real, allowed) for allowed in self.allowed):
            return real
        if _inside(written, self.path) and _inside(real, self.path.resolve()):
            return real
        via = f" (a symlink to {real})" if _inside(written, self.path) else ""
        raise OutsideProject(
            f"{what} '{name}'{via} is outside the project root {self.path} ({self.reason}): "
            f"every file a spec names must lie inside it, symlinks followed; {_ALLOW_HINT}")


def project_root(spec_path: str | Path, allow_outside: tuple[str | Path, ...] = (),
                 cwd: str | Path | None = None) -> ProjectRoot:
    """The project root of `spec_path` (see the module docstring), with `allow_outside` resolved."""
    spec = Path(os.path.abspath(spec_path))
    allowed = tuple(Path(p).expanduser().resolve() for p in allow_outside)
    for folder in spec.parents:
        if (folder / SPECS_FOLDER).is_dir():
            return ProjectRoot(folder, f"the folder holding {SPECS_FOLDER}/", allowed)
    here = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    if _inside(spec, here):
        return ProjectRoot(here, f"the current directory: no folder above the spec holds {SPECS_FOLDER}/", allowed)
    return ProjectRoot(spec.parent, f"the spec's folder: no folder above it holds {SPECS_FOLDER}/ "
                                    "and it is outside the current directory", allowed)


def regular_file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a plain file (a FIFO or device would block or never end),
    or None (also when it does not exist: the reader reports that in its own words)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def template_folder(template: str) -> str:
    """The folder a path template names before any data goes in: its text up to the first
    Jinja tag, cut after the last '/' ("dbs/{{ db_id }}.sqlite" -> "dbs/"; "" is the spec's folder)."""
    cuts = [i for i in (template.find("{{"), template.find("{%"), template.find("{#")) if i >= 0]
    head = template[: min(cuts)] if cuts else template
    return head[: head.rfind("/") + 1]


def row_path_problem(base_dir: Path, folder: str, rendered: str) -> str | None:
    """Why the path `rendered` from a row's values may not be opened: it must stay inside the
    template's `folder` (relative to `base_dir`), as written and with symlinks followed."""
    if any(ord(c) < 32 or ord(c) == 127 for c in rendered):
        return f"path {rendered!r} holds a control character"
    where = f"'{folder}'" if folder else "the spec's folder"
    leaves = f"leaves {where}: the values of a row may only choose a file inside the folder the template names"
    base = Path(os.path.abspath(base_dir))
    top = Path(os.path.normpath(base / folder)) if folder else base
    joined = base / rendered
    if (os.path.isabs(rendered) and not os.path.isabs(folder)) or not _inside(Path(os.path.normpath(joined)), top):
        return f"path '{rendered}' {leaves}"
    try:
        real = joined.resolve()
    except (OSError, RuntimeError) as exc:
        return f"path '{rendered}' cannot be resolved ({_reason(exc)})"
    if not _inside(real, top.resolve()):
        return f"path '{rendered}' (a symlink to {real}) {leaves}"
    return None
