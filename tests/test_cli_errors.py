"""Every user error is one line `error: ...` with exit 2 (no traceback), pinned word for word."""

import pytest

from taskc import __version__
from tests.support import REPO, taskc

SPEC = str(REPO / "specs" / "banking77.yaml")
KNOWN = "anthropic, baseline, gold, openai, replay, transformers, vllm"


@pytest.fixture
def models_file(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  qwen3-0.6b: {backend: vllm, model: Qwen/Qwen3-0.6B}\n  gpt-5-nano: {backend: openai}\n")
    return path


CASES = [
    (["eval", SPEC, "--backend", "gpt4"], f"error: unknown backend 'gpt4' (known: {KNOWN}; did you mean 'openai'?)"),
    (["eval", SPEC, "--backend", "antropic", "--model", "m"], f"error: unknown backend 'antropic' (known: {KNOWN}; did you mean 'anthropic'?)"),
    (["eval", SPEC, "--backend", "nothing-like-it"], f"error: unknown backend 'nothing-like-it' (known: {KNOWN})"),
    (["eval", SPEC, "--backend", "openai"], "error: --backend openai needs --model"),
    (["eval", SPEC, "--models", "qwen3-06b", "--models-file", "{models}"],
     "error: model 'qwen3-06b' is not in {models} (known: gpt-5-nano, qwen3-0.6b; did you mean 'qwen3-0.6b'?)"),
    (["eval", SPEC, "--models", "a", "--models-file", "{tmp}/none.yaml"],
     "error: cannot read models file {tmp}/none.yaml: No such file or directory"),
    (["eval", SPEC, "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--mode", "weird"],
     "error: unknown --mode 'weird' for the openai backend (known: openai, vllm, json_schema, json_object, none)"),
    (["eval", SPEC, "--backend", "replay", "--model", "{tmp}/none.jsonl"],
     "error: cannot read the predictions file {tmp}/none.jsonl: No such file or directory"),
    (["export", SPEC, "--format", "alpaca"], "error: unknown export format 'alpaca' (expected one of: openai, chatml, sharegpt)"),
    (["report", "{tmp}/no-runs"], "error: no such run folder: {tmp}/no-runs"),
    (["verify", SPEC, "--engines", "xgramar"], "error: unknown grammar engine 'xgramar' in --engines (known: xgrammar, llguidance, outlines-core)"),
    (["show", SPEC, "--split", "dev"], f"error: no dev split in {SPEC}"),
    (["score", SPEC, "--predictions", "{tmp}/none.jsonl"], "error: cannot read {tmp}/none.jsonl: No such file or directory"),
    (["synth", SPEC, "--teacher", "opena:m", "--n", "2", "--models-file", "{models}"],
     f"error: unknown backend 'opena' (known: {KNOWN}; did you mean 'openai'?)"),
    (["bench", SPEC, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"],
     "error: give exactly one of --rate (open loop) and --concurrency (closed loop)"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:1] + a[2:4]) for a, _ in CASES])
def test_user_errors_are_one_line(args, message, tmp_path, models_file):
    fill = {"tmp": str(tmp_path), "models": str(models_file)}
    proc = taskc(*[a.format(**fill) for a in args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == message.format(**fill)
    assert not (tmp_path / "runs").exists()


def test_version_and_a_never_compiled_task(tmp_path):
    proc = taskc("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"taskc {__version__}"
    check = taskc("compile", "--check", SPEC, "--out", str(tmp_path / "generated"), cwd=tmp_path)
    assert check.returncode == 1
    assert check.stdout.strip() == f"{tmp_path}/generated/banking77: not compiled (run: taskc compile {SPEC})"
