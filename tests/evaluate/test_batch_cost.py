"""Batch pricing: the bundled default discount per provider, models.yaml overrides, the price of
a run partly answered by a batch, and a bad batch_discount in models.yaml."""

import pytest

from taskc.backends.config import ModelConfig, load_models
from taskc.errors import TaskcError
from taskc.evaluate.cost import batch_discount, batch_share, cost_summary
from taskc.runner.types import Result, Usage

USAGE = {"input_tokens": 3_000_000, "output_tokens": 500_000, "cached_input_tokens": 1_000_000}
HALF = {"input_tokens": 1_500_000, "output_tokens": 250_000, "cached_input_tokens": 500_000}
LIST = (2_000_000 * 0.05 + 1_000_000 * 0.005 + 500_000 * 0.40) / 1e6  # gpt-5-nano, USAGE


def nano(**kw):
    return ModelConfig(name="n", backend="openai", model="gpt-5-nano", **kw)


def test_both_providers_default_to_half_price_and_models_yaml_overrides():
    assert batch_discount(nano()) == 0.5
    assert batch_discount(ModelConfig(name="c", backend="anthropic", model="claude-haiku-4-5")) == 0.5
    assert batch_discount(ModelConfig(name="v", backend="vllm", model="/m")) is None
    assert batch_discount(nano(batch_discount=0.25)) == 0.25
    assert batch_discount(nano(price={"input_per_mtok": 1.0, "batch_discount": 0.1})) == 0.1


def test_all_partial_and_no_batch_pricing():
    all_batch = cost_summary(nano(), USAGE, 100, None, {"requests": 100, "usage": USAGE})
    assert all_batch["pricing"] == "batch" and all_batch["usd_total"] == pytest.approx(LIST * 0.5)
    assert all_batch["usd_total_at_list_price"] == pytest.approx(LIST)
    assert all_batch["usd_per_million_requests"] == pytest.approx(LIST * 0.5 / 100 * 1e6)
    half = cost_summary(nano(), USAGE, 100, None, {"requests": 50, "usage": HALF})
    assert half["pricing"] == "partial" and half["batch_requests"] == 50
    assert half["usd_total"] == pytest.approx(LIST * 0.75)
    listed = cost_summary(nano(), USAGE, 100, None, {"requests": 0, "usage": {}})
    assert listed["pricing"] == "list" and listed["usd_total"] == pytest.approx(LIST) and "batch_discount" not in listed
    own = cost_summary(nano(price={"input_per_mtok": 1.0, "output_per_mtok": 2.0, "batch_discount": 0.2}), USAGE, 10,
                       None, {"requests": 10, "usage": USAGE})
    assert own["usd_total"] == pytest.approx((3.0 + 1.0) * 0.8) and "batch_discount" not in own["price"]


def test_unknown_discount_says_so():
    config = ModelConfig(name="x", backend="replay", model="gpt-5-nano", price={"input_per_mtok": 1.0})
    out = cost_summary(config, USAGE, 10, None, {"requests": 10, "usage": USAGE})
    assert out["usd_total"] == pytest.approx(3.0)
    assert out["note"] == "no batch discount known for replay: batch answers counted at the list price"


def test_batch_share_counts_batch_answers_and_retries():
    results = [Result(0, 0, "a", usage=Usage(10, 2, 0), extra={"batch": "b1"}),
               Result(1, 0, "b", usage=Usage(5, 1, 1), extra={"batch": "b2"}),
               Result(2, 0, "c", usage=Usage(7, 7, 0), extra={"batch_retry": "batch b1: expired"}),
               Result(3, 0, "d", usage=Usage(1, 1, 0))]
    assert batch_share(results) == {"requests": 2, "usage": {"input_tokens": 15, "output_tokens": 3,
                                                             "cached_input_tokens": 1},
                                    "batches": ["b1", "b2"], "retried_sync": 1}


def test_models_yaml_batch_discount(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  nano:\n    backend: openai\n    model: gpt-5-nano\n    batch_discount: 0.3\n")
    assert load_models(path)["nano"].batch_discount == 0.3
    assert load_models(path)["nano"].settings()["batch_discount"] == 0.3
    path.write_text("models:\n  nano:\n    backend: openai\n    model: gpt-5-nano\n    batch_discount: 50%\n")
    with pytest.raises(TaskcError) as info:
        load_models(path)
    assert str(info.value) == (f"{path}:5:21: error: batch_discount of model 'nano' must be a number from 0 to below 1 "
                               "(the share taken off the list price), not '50%'")
