"""models.yaml and the command line's model choice: one ModelConfig per model, errors at their line."""

from pathlib import Path

import pytest

from taskc.backends import make_backend
from taskc.backends.config import ModelConfig, ModelSelection, load_models, resolve_model
from taskc.errors import TaskcError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_models_reads_every_field(tmp_path):
    path = write(tmp_path, """\
models:
  qwen:
    backend: vllm
    model: Qwen/Qwen3-0.6B
    engine_args: {max_model_len: 4096}
    gpu_hourly_usd: 2.5
  nano:
    backend: openai
    model: gpt-5-nano
    api_key_env: MY_KEY
    price: {input_per_mtok: 0.05, output_per_mtok: 0.4}
  self:
    backend: openai
    base_url: http://127.0.0.1:8000/v1
    local: false
""")
    models = load_models(path)
    assert models["qwen"] == ModelConfig(name="qwen", backend="vllm", model="Qwen/Qwen3-0.6B",
                                         engine_args={"max_model_len": 4096}, gpu_hourly_usd=2.5)
    assert models["nano"].api_key_env == "MY_KEY" and models["nano"].price["output_per_mtok"] == 0.4
    assert models["self"].model == "self"  # the name stands in for a missing model id
    assert models["qwen"].is_local and not models["nano"].is_local
    assert not models["self"].is_local  # `local: false` overrides the loopback guess


@pytest.mark.parametrize("text, message", [
    ("models: [a, b]\n", "models.yaml:1:1: error: models file needs a 'models:' mapping"),
    ("models:\n  x: {model: m}\n", "models.yaml:2:6: error: model 'x' needs a 'backend'"),
    ("models:\n  x:\n    backend: openai\n    modle: m\n", "models.yaml:4:5: error: unknown field 'modle' in model 'x'"),
])
def test_load_models_errors_are_located(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TaskcError) as err:
        load_models(Path(write(tmp_path, text).name))
    assert str(err.value) == message


def test_unreadable_models_file(tmp_path):
    with pytest.raises(TaskcError, match=r"^cannot read models file .*nope.yaml: No such file or directory$"):
        load_models(tmp_path / "nope.yaml")


def test_selection_names_and_defaults(tmp_path):
    assert ModelSelection().configs() == [ModelConfig(name="baseline", backend="baseline", model="tfidf-1nn")]
    assert ModelSelection(backend="gold").configs()[0].name == "gold"
    (openai,) = ModelSelection(backend="openai", model="gpt-5", base_url="http://h/v1", mode="json_schema").configs()
    assert (openai.name, openai.base_url, openai.mode) == ("openai:gpt-5", "http://h/v1", "json_schema")
    (replay,) = ModelSelection(backend="replay", model="p.jsonl").configs()
    assert replay.predictions == "p.jsonl"
    with pytest.raises(TaskcError, match="^--backend vllm needs --model$"):
        ModelSelection(backend="vllm").configs()
    with pytest.raises(TaskcError) as err:
        ModelSelection(backend="opnai").configs()
    assert str(err.value) == ("unknown backend 'opnai' (known: anthropic, baseline, gold, openai, replay, transformers, "
                              "vllm; did you mean 'openai'?)")
    path = write(tmp_path, "models:\n  a: {backend: gold}\n")
    assert [c.name for c in ModelSelection(models="a", models_file=path).configs()] == ["a"]
    with pytest.raises(TaskcError, match=r"^model 'b' is not in .*models.yaml \(known: a\)$"):
        ModelSelection(models="a,b", models_file=path).configs()


def test_resolve_model_takes_a_name_or_backend_colon_model(tmp_path):
    path = write(tmp_path, "models:\n  teacher: {backend: openai, model: big}\n")
    assert resolve_model("teacher", path).model == "big"
    config = resolve_model("openai:Qwen/Qwen3-8B", path, "http://127.0.0.1:8000/v1")
    assert (config.backend, config.model, config.base_url) == ("openai", "Qwen/Qwen3-8B", "http://127.0.0.1:8000/v1")
    with pytest.raises(TaskcError, match="neither in"):
        resolve_model("nobody", path)


def test_each_backend_reads_its_own_config(monkeypatch):
    from taskc.compiler.build import compile_spec
    from tests.support import REPO

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    contract = compile_spec(REPO / "specs" / "banking77.yaml")
    openai = make_backend(ModelConfig(name="o", backend="openai", model="m", base_url="http://127.0.0.1:1/v1"), contract)
    assert (openai.model, openai.mode, openai.url) == ("m", "vllm", "http://127.0.0.1:1/v1/chat/completions")
    assert openai.needs_http and not openai.remote and openai.constrained
    gold = make_backend(ModelConfig(name="g", backend="gold", model="gold"), contract)
    assert gold.batched and not gold.needs_http and not gold.remote
    vllm = make_backend(ModelConfig(name="v", backend="vllm", model="/tiny", engine_args={"dtype": "float32"}), contract)
    assert vllm.engine_args == {"dtype": "float32"}
    assert vllm.structured_outputs_config == contract.body["engine"]["structured_outputs_config"]
