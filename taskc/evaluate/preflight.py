"""Check before spending: everything a run needs is there before its first request (and before
its run folder exists), and each problem says which part of the run needs what."""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit

from taskc.backends import Backend, make_backend
from taskc.backends.base import BackendUnavailable, MissingKey
from taskc.backends.config import ModelConfig
from taskc.backends.registry import is_in_process
from taskc.backends.trained import student_contract_check
from taskc.common.endpoints import is_local, redact_url
from taskc.errors import TaskcError


def reachable(url: str, timeout_s: float = 1.0) -> str | None:
    """Why nothing answers at a loopback endpoint (connection refused, ...), or None. Only
    loopback endpoints are tried: a TCP connect there costs nothing and no request is sent."""
    if not is_local(url):
        return None
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _endpoint_problem(backend: Backend) -> str | None:
    url = getattr(backend, "base_url", None) if backend.needs_http else None
    if not url:
        return None
    why = reachable(url)
    return None if why is None else f"nothing answers at {redact_url(url)} ({why.lower()})"


def check_model(config: ModelConfig, contract, allow_other_contract: bool = False) -> Backend:
    """The model's backend, built; a TaskcError when it cannot run (key, endpoint) or is a model
    `taskc train` made for another contract (unless `allow_other_contract`: then a warning)."""
    if is_in_process(config.backend):
        warning = student_contract_check(config.model, contract.id, allow_other_contract)
        if warning:
            print(warning, file=sys.stderr)
    backend = make_backend(config, contract)
    problem = _endpoint_problem(backend)
    if problem:
        raise TaskcError(f"{problem}: start the server first, or check --base-url")
    return backend


def check_run_judges(contract, scorer, options) -> None:
    """Every judge the contract's llm_judge metrics need under the run's options (`--judge`,
    `--judge-base-url`, `--models-file`) can run; nothing to check with `--no-judge`."""
    from taskc.evaluate.scoring import judge_specs

    if options.no_judge or not scorer.needs_judge:
        return
    check_judges(contract, [(spec["name"], judge.config)
                            for (_, spec), judge in zip(scorer.judges, judge_specs(scorer, options))])


def check_judges(contract, judges: list[tuple[str, ModelConfig]]) -> None:
    """Every judge a metric needs can run; `judges` is (metric name, judge model) pairs."""
    for metric, config in judges:
        label = f"{config.backend}:{config.model}"
        hint = "--judge to use another, --no-judge to skip"
        try:
            backend = make_backend(config, contract)
        except MissingKey as exc:
            need = f"${exc.env}" if exc.env else "an API key"
            raise TaskcError(f"metric {metric} needs {need} (judge {label}; {hint})") from None
        except (BackendUnavailable, ValueError) as exc:
            raise TaskcError(f"metric {metric} cannot use its judge {label}: {exc} ({hint})") from None
        problem = _endpoint_problem(backend)
        if problem:
            raise TaskcError(f"metric {metric} needs its judge {label}, but {problem} ({hint})")
