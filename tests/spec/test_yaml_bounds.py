"""Reading a spec is bounded: alias bombs, recursive aliases, deep nesting and huge files are
errors at file:line:col (exit 2), found in well under a second, never a hang or a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from taskc.errors import SpecError
from taskc.spec.load import load_spec
from taskc.spec.yaml_source import load_yaml


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """`a` holds `width` strings, each next key `width` aliases of the previous: width**levels values."""
    lines = ["taskc: 1", "a: &a [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


def problems(tmp: Path, text: str) -> list[str]:
    (tmp / "spec.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp / "spec.yaml")
    return [d.format() for d in info.value.diagnostics]


def test_an_alias_bomb_stops_at_the_alias_that_expands_too_far(chdir):
    assert problems(chdir, alias_bomb()) == [
        "spec.yaml:7:8: error: YAML alias '*e' expands to more than 100,000 values "
        "(aliases are expanded at every use); write the values out"]


def test_an_alias_bomb_under_an_unknown_key_is_stopped_too(chdir):
    nested = "taskc: 1\nextra:\n" + "".join(f"  {line}\n" for line in alias_bomb().splitlines()[1:])
    assert problems(chdir, nested) == [
        "spec.yaml:8:10: error: YAML alias '*e' expands to more than 100,000 values "
        "(aliases are expanded at every use); write the values out"]


def test_a_recursive_alias_is_an_error_not_a_recursion_error(chdir):
    (chdir / "spec.yaml").write_text("taskc: 1\nname: x\nloop: &l [1, *l]\nmap: &m {self: *m}\n")
    found = [d.format() for d in load_spec(chdir / "spec.yaml").problems]
    assert found[:2] == [
        "spec.yaml:3:14: error: recursive YAML alias '*l': it refers to a value that contains it",
        "spec.yaml:4:16: error: recursive YAML alias '*m': it refers to a value that contains it",
    ]


def test_aliases_within_the_bound_still_work():
    located, found = load_yaml("a: &x {p: [1, 2]}\nb: *x\nc: [*x, *x]\n", "spec.yaml")
    assert found == []
    assert located.data == {"a": {"p": [1, 2]}, "b": {"p": [1, 2]}, "c": [{"p": [1, 2]}, {"p": [1, 2]}]}


@pytest.mark.parametrize("style", ["block", "flow"])
def test_deep_nesting_is_an_error_not_a_recursion_error(style):
    depth = 600  # below libyaml's own limit (1000), above what Python's stack takes
    if style == "block":
        text = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "x\n"
    else:
        text = "a: " + "[" * depth + "]" * depth + "\n"
    located, found = load_yaml(text, "spec.yaml")
    assert [d.message for d in found] == ["YAML nesting deeper than 64 levels"]
    line, col = (found[0].line, found[0].col)
    assert (line, col) == ((66, 131) if style == "block" else (1, 68))


def test_a_huge_spec_is_refused_unread(chdir):
    keys = "".join(f"k{i}: {i}\n" for i in range(700_000))  # about 11 MB
    assert len(keys) > 10_000_000
    assert problems(chdir, "taskc: 1\n" + keys) == [
        "spec.yaml:1:1: error: spec is larger than 1,048,576 bytes (1 MiB): a spec is a page of YAML; put data in data files"]


def test_a_spec_that_is_not_a_file(chdir):
    (chdir / "spec.yaml").mkdir()
    with pytest.raises(SpecError) as info:
        load_spec(chdir / "spec.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        f"spec.yaml:1:1: error: cannot read spec: {chdir / 'spec.yaml'} is a folder, not a file"]


def test_the_cli_reports_an_alias_bomb_with_exit_2(chdir):
    (chdir / "spec.yaml").write_text(alias_bomb())
    proc = subprocess.run([sys.executable, "-m", "taskc.cli", "validate", "spec.yaml"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "spec.yaml:7:8: error: YAML alias '*e' expands to more than 100,000 values "
        "(aliases are expanded at every use); write the values out", "1 error"]


def test_unknown_fields_past_twenty_are_counted(chdir):
    (chdir / "spec.yaml").write_text("taskc: 1\n" + "".join(f"k{i}: {i}\n" for i in range(30)))
    found = [d.format() for d in load_spec(chdir / "spec.yaml").problems]
    unknown = [f for f in found if "unknown field" in f or "more unknown" in f]
    assert len(unknown) == 21
    assert unknown[-1] == "spec.yaml:22:1: error: ... and 10 more unknown fields"
