"""cost_summary: token prices (bundled table, models.yaml), GPU hours, local models."""

import pytest

from taskc.backends.config import ModelConfig
from taskc.evaluate.cost import bundled_price, cost_summary

USAGE = {"input_tokens": 3_000_000, "output_tokens": 500_000, "cached_input_tokens": 1_000_000}


def test_bundled_price_counts_cached_input_at_its_own_price():
    price, as_of = bundled_price("gpt-5-nano")
    assert price == {"input_per_mtok": 0.05, "output_per_mtok": 0.40, "cached_input_per_mtok": 0.005} and as_of
    out = cost_summary(ModelConfig(name="n", backend="openai", model="gpt-5-nano"), USAGE, 1000, 50.0)
    expected = (2_000_000 * 0.05 + 1_000_000 * 0.005 + 500_000 * 0.40) / 1e6
    assert out["basis"] == "tokens" and out["price_source"] == as_of
    assert out["usd_total"] == pytest.approx(expected)
    assert out["usd_per_million_requests"] == pytest.approx(expected / 1000 * 1e6)


def test_models_yaml_price_wins_and_cached_falls_back_to_input():
    config = ModelConfig(name="n", backend="openai", model="gpt-5-nano", price={"input_per_mtok": 1.0, "output_per_mtok": 2.0})
    out = cost_summary(config, USAGE, 10, None)
    assert out["price_source"] == "models.yaml"
    assert out["usd_total"] == pytest.approx((3_000_000 * 1.0 + 500_000 * 2.0) / 1e6)


def test_gpu_hours_need_a_rate_and_local_models_cost_nothing_per_token():
    gpu = ModelConfig(name="g", backend="openai", model="qwen", base_url="http://127.0.0.1:8000/v1", gpu_hourly_usd=3.6)
    assert cost_summary(gpu, USAGE, 100, 10.0)["usd_per_million_requests"] == pytest.approx(3.6 / 3600 / 10.0 * 1e6)
    assert cost_summary(gpu, USAGE, 100, None) == {"basis": "gpu_hourly_usd", "gpu_hourly_usd": 3.6,
                                                   "usd_per_million_requests": None}
    local = cost_summary(ModelConfig(name="v", backend="vllm", model="/m"), USAGE, 100, 10.0)
    assert local == {"basis": "local", "usd_total": None, "usd_per_million_requests": None,  # never "$0"
                     "note": "not priced: a local model; give gpu_hourly_usd (models.yaml or --gpu-hourly-usd) to price it"}


def test_unpriced_models_and_empty_runs_say_so():
    out = cost_summary(ModelConfig(name="x", backend="openai", model="no-such-model"), USAGE, 10, 1.0)
    assert out["usd_total"] is None and out["note"] == "no price for no-such-model"
    empty = cost_summary(ModelConfig(name="x", backend="openai", model="gpt-5"), USAGE, 0, None)
    assert empty == {"basis": None, "usd_total": None, "usd_per_million_requests": None}


def test_terminal_line_says_not_priced_for_a_local_model_and_dollars_otherwise():
    from taskc.evaluate.cli import cost_text
    local = cost_summary(ModelConfig(name="q", backend="vllm", model="students/q"), USAGE, 1000, 50.0)
    assert cost_text(local) == "not priced"
    priced = cost_summary(ModelConfig(name="n", backend="openai", model="gpt-5-nano"), USAGE, 1000, 50.0)
    assert cost_text(priced) == f"${priced['usd_per_million_requests']:,.2f} per 1M requests"
    assert cost_text({"basis": None, "usd_per_million_requests": None}) == "cost unknown"
