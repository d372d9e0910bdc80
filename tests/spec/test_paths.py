"""The project root and the confinement rule of taskc.spec.paths, case by case."""

from pathlib import Path

import pytest

from taskc.spec.paths import OutsideProject, project_root, row_path_problem, template_folder

HINT = "every file a spec names must lie inside it, symlinks followed; pass --allow-outside PATH to allow files elsewhere"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """tmp/proj/specs/task.yaml, tmp/proj/data/test.jsonl, and tmp/outside/secret.csv beside it."""
    root = tmp_path / "proj"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "task.yaml").write_text("taskc: 1\n")
    (root / "data").mkdir()
    (root / "data" / "test.jsonl").write_text("{}\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.csv").write_text("root:x:0:0\n")
    return root


def test_the_root_is_the_folder_holding_specs(project):
    for spec in (project / "specs" / "task.yaml", project / "specs" / "deep" / "er.yaml", project / "task.yaml"):
        root = project_root(spec, cwd="/")
        assert (root.path, root.reason) == (project, "the folder holding specs/")


def test_without_specs_the_root_is_the_current_directory_or_the_spec_folder(tmp_path):
    spec = tmp_path / "a" / "b" / "task.yaml"
    here = project_root(spec, cwd=tmp_path)
    assert (here.path, here.reason) == (tmp_path, "the current directory: no folder above the spec holds specs/")
    away = project_root(spec, cwd=tmp_path / "elsewhere")
    assert away.path == tmp_path / "a" / "b"
    assert away.reason == "the spec's folder: no folder above it holds specs/ and it is outside the current directory"


def test_files_inside_the_project_resolve(project):
    root = project_root(project / "specs" / "task.yaml")
    assert root.confine(project / "specs", "../data/test.jsonl", "data file") == project / "data" / "test.jsonl"


@pytest.mark.parametrize("name", ["/etc/passwd", "../../outside/secret.csv", "../data/../../outside/secret.csv"])
def test_absolute_and_dotdot_paths_are_refused(project, name):
    root = project_root(project / "specs" / "task.yaml")
    with pytest.raises(OutsideProject) as info:
        root.confine(project / "specs", name, "data file")
    assert str(info.value) == (f"data file '{name}' is outside the project root {project} "
                               f"(the folder holding specs/): {HINT}")


def test_a_symlink_out_of_the_project_is_refused_and_named(project):
    (project / "data" / "link.csv").symlink_to(project.parent / "outside" / "secret.csv")
    root = project_root(project / "specs" / "task.yaml")
    with pytest.raises(OutsideProject) as info:
        root.confine(project / "specs", "../data/link.csv", "label file")
    assert str(info.value) == (f"label file '../data/link.csv' (a symlink to {project.parent / 'outside' / 'secret.csv'}) "
                               f"is outside the project root {project} (the folder holding specs/): {HINT}")
    assert "root:x" not in str(info.value)


def test_a_symlink_into_another_project_is_outside_too(project, tmp_path):
    """Even a neighbouring taskc project's files: a shared spec must not reach them by a link."""
    other = tmp_path / "other"
    (other / "specs").mkdir(parents=True)
    (other / "examples").mkdir()
    (other / "examples" / "test.csv").write_text("text,answer\n")
    (project / "examples").symlink_to(other / "examples")
    root = project_root(project / "specs" / "task.yaml")
    with pytest.raises(OutsideProject, match=r"^data file '../examples/test.csv' \(a symlink to .*other/examples/test.csv\) "
                                             r"is outside the project root"):
        root.confine(project / "specs", "../examples/test.csv", "data file")
    allowed = project_root(project / "specs" / "task.yaml", allow_outside=(other,))
    assert allowed.confine(project / "specs", "../examples/test.csv", "data file") == (other / "examples" / "test.csv").resolve()


def test_allow_outside_admits_a_folder(project):
    secret = project.parent / "outside" / "secret.csv"
    root = project_root(project / "specs" / "task.yaml", allow_outside=(project.parent / "outside",))
    assert root.confine(project / "specs", str(secret), "data file") == secret
    assert root.confine(project / "specs", "../../outside/secret.csv", "data file") == secret


def test_a_symlink_loop_is_an_error_not_a_hang(project):
    (project / "data" / "loop").symlink_to(project / "data" / "loop")
    root = project_root(project / "specs" / "task.yaml")
    with pytest.raises(OutsideProject) as info:
        root.confine(project / "data", "loop", "data file")
    assert str(info.value).startswith("data file 'loop' cannot be resolved (")


@pytest.mark.parametrize("template, folder", [
    ("dbs/{{ db_id }}.sqlite", "dbs/"),
    ("../examples/text2sql/databases/{{ db_id }}/{{ db_id }}.sqlite", "../examples/text2sql/databases/"),
    ("{{ db }}", ""),
    ("db_{{ id }}.sqlite", ""),
    ("dbs/{% if x %}a{% endif %}.sqlite", "dbs/"),
    ("fixed/one.sqlite", "fixed/"),
])
def test_template_folder(template, folder):
    assert template_folder(template) == folder


LEAVES = "the values of a row may only choose a file inside the folder the template names"


@pytest.mark.parametrize("folder, rendered, expected", [
    ("dbs/", "dbs/a.sqlite", None),
    ("dbs/", "dbs/sub/a.sqlite", None),
    ("dbs/", "dbs/../../../tmp/evil.sqlite", f"path 'dbs/../../../tmp/evil.sqlite' leaves 'dbs/': {LEAVES}"),
    ("", "/etc/passwd", f"path '/etc/passwd' leaves the spec's folder: {LEAVES}"),
    ("", "../x.sqlite", f"path '../x.sqlite' leaves the spec's folder: {LEAVES}"),
    ("dbs/", "dbs/a\x00.sqlite", "path 'dbs/a\\x00.sqlite' holds a control character"),
    ("dbs/", "dbs/new.sqlite?mode=rwc&x=1", None),  # a plain (missing) file name: the URI quotes it
])
def test_row_paths_stay_in_the_template_folder(tmp_path, folder, rendered, expected):
    assert row_path_problem(tmp_path, folder, rendered) == expected


def test_a_row_path_through_a_symlink_out_of_the_folder(tmp_path):
    (tmp_path / "dbs").mkdir()
    (tmp_path / "other.sqlite").write_bytes(b"")
    (tmp_path / "dbs" / "link.sqlite").symlink_to(tmp_path / "other.sqlite")
    assert row_path_problem(tmp_path, "dbs/", "dbs/link.sqlite") == (
        f"path 'dbs/link.sqlite' (a symlink to {tmp_path / 'other.sqlite'}) leaves 'dbs/': {LEAVES}")
