"""write_files / stale_files: generated/<task>/ written atomically, stale files found and removed."""

from taskc.compiler.artifacts import stale_files, write_files


def test_write_then_check_then_change(tmp_path):
    out = tmp_path / "generated" / "task"
    files = {"contract.json": "{}\n", "prompts/user.j2": "{{ text }}", "requests/openai.json": "{\"a\": 1}\n"}
    assert stale_files(out, files) == sorted(files)  # nothing written yet: every file differs
    written = write_files(out, files)
    assert [p.relative_to(out).as_posix() for p in written] == sorted(files)
    assert (out / "prompts" / "user.j2").read_text() == "{{ text }}"
    assert stale_files(out, files) == []
    mtime = (out / "contract.json").stat().st_mtime_ns
    write_files(out, files)  # unchanged content is not rewritten
    assert (out / "contract.json").stat().st_mtime_ns == mtime

    (out / "prompts" / "user.j2").write_text("edited by hand")
    (out / "old.json").write_text("from an earlier compile")
    assert stale_files(out, files) == ["prompts/user.j2", "old.json"]
    fewer = {k: v for k, v in files.items() if k != "requests/openai.json"}
    write_files(out, fewer)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(fewer)
    assert (out / "prompts" / "user.j2").read_text() == "{{ text }}"
    assert not list(out.rglob("*.tmp"))
