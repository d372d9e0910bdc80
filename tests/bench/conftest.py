"""Fixtures for the load-generator tests: the yes/no spec and latency servers in subprocesses."""

from pathlib import Path

import pytest

from tests.fakes.latency_server import LatencyServer  # importable: tests/conftest.py puts the repo on sys.path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def yesno():
    """The compiled yes/no contract (10 rows: 6 right, 2 wrong, 2 invalid when echoed)."""
    from taskc.compiler.build import compile_spec

    return compile_spec(FIXTURES / "yesno.yaml")


@pytest.fixture(scope="module")
def slow_server():
    """Lognormal delays, median 100 ms (sigma 0.5), no capacity limit, echo answers, 2 workers."""
    with LatencyServer(workers=2, median_ms=100.0, sigma=0.5, echo=True) as server:
        yield server


@pytest.fixture(scope="module")
def fast_server():
    """Lognormal delays, median 10 ms, one worker: for the command and multi-process tests."""
    with LatencyServer(workers=1, median_ms=10.0, sigma=0.5, echo=True) as server:
        yield server
