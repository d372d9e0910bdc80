"""Subprocess for the SIGKILL test: run N requests through the runner with a file cache.

Usage: PYTHONPATH=<repo> python _kill_worker.py BASE_URL CACHE_PATH OUT_PATH N
Writes one JSON line per result to OUT_PATH when (if) it finishes.
"""

import asyncio
import json
import sys

from taskc.backends import get_backend
from taskc.runner.cache import ResultCache
from taskc.runner.engine import run_requests
from tests.fakes.requests import make_request


CONCURRENCY = 8


def main() -> None:
    base_url, cache_path, out_path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    backend = get_backend("openai", model="m", base_url=base_url, api_key_env="TASKC_TEST_KEY")
    requests = [make_request("text", f"row {i}", i) for i in range(n)]
    with ResultCache(cache_path) as cache:
        results = asyncio.run(run_requests(backend, requests, cache=cache, cache_namespace="kill",
                                           concurrency=CONCURRENCY, progress=False))
    with open(out_path, "w") as fh:
        for r in results:
            fh.write(json.dumps({"index": r.index, "raw": r.raw, "error": r.error, "cached": r.cached}) + "\n")


if __name__ == "__main__":
    main()
