"""A vLLM server's `/metrics` (Prometheus text): scrape, parse, and derive prefix-cache hit rate and memory.

vLLM's metric names change between versions, so they are matched by substring:

- prefix cache: the counters whose names contain `prefix_cache_queries` and `prefix_cache_hits`
  (`vllm:prefix_cache_queries_total` in v1, `vllm:gpu_prefix_cache_queries_total` in some 0.x
  releases; the connector's `external_prefix_cache_*` are ignored). Hit rate = increase of hits /
  increase of queries between the scrape before and the scrape after the run. Older servers only
  have a gauge `vllm:gpu_prefix_cache_hit_rate`: then its last value is reported.
- memory: `process_resident_memory_bytes` (the API server process; the engine core is another
  process) and the KV-cache usage gauge (`vllm:kv_cache_usage_perc`, formerly
  `vllm:gpu_cache_usage_perc` / `vllm:cpu_cache_usage_perc`; a fraction 0..1), sampled during the
  run (max and mean).

Every figure is None when the server does not expose it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

Metrics = dict[str, float]  # metric name -> value summed over its label sets


def parse_prometheus(text: str) -> Metrics:
    """Prometheus exposition text -> {name: sum of its samples over label sets}."""
    out: Metrics = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            _, _, rest = rest.rpartition("}")
        else:
            name, _, rest = line.partition(" ")
        parts = rest.split()
        if not parts:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        if math.isnan(value):
            continue
        name = name.strip()
        out[name] = out.get(name, 0.0) + value
    return out


def metrics_url(base_url: str) -> str:
    """`http://host:port/metrics` for an API base URL such as `http://host:port/v1`."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme or "http", parts.netloc, "/metrics", "", ""))


def _find(metrics: Mapping[str, float], needle: str, exclude: Iterable[str] = ("external", "connector")) -> str | None:
    names = [n for n in metrics if needle in n and not any(x in n for x in exclude)
             and not n.endswith(("_created", "_bucket", "_sum", "_count"))]
    if not names:
        return None
    names.sort(key=lambda n: (not n.startswith("vllm:"), len(n), n))
    return names[0]


def prefix_cache_hit_rate(before: Mapping[str, float] | None, after: Mapping[str, float] | None) -> float | None:
    """Hits / queries over the run, from counter increases (or the old hit-rate gauge)."""
    if not after:
        return None
    hits, queries = _find(after, "prefix_cache_hits"), _find(after, "prefix_cache_queries")
    if hits and queries:
        dq = after[queries] - (before or {}).get(queries, 0.0)
        dh = after[hits] - (before or {}).get(hits, 0.0)
        return round(dh / dq, 6) if dq > 0 else None
    gauge = _find(after, "prefix_cache_hit_rate")
    return round(after[gauge], 6) if gauge else None


def kv_cache_usage_name(metrics: Mapping[str, float]) -> str | None:
    """The KV-cache usage gauge's name in this server's metrics."""
    for needle in ("kv_cache_usage_perc", "gpu_cache_usage_perc", "cpu_cache_usage_perc"):
        name = _find(metrics, needle)
        if name:
            return name
    return None


def memory(before: Mapping[str, float] | None, during: list[Mapping[str, float]], after: Mapping[str, float] | None) -> dict[str, Any] | None:
    """Resident memory (bytes, max over the scrapes) and KV-cache usage (fraction, max and mean)."""
    scrapes = [m for m in [before, *during, after] if m]
    if not scrapes:
        return None
    out: dict[str, Any] = {"resident_bytes": None, "kv_cache_usage_max": None, "kv_cache_usage_mean": None}
    rss = [m["process_resident_memory_bytes"] for m in scrapes if "process_resident_memory_bytes" in m]
    if rss:
        out["resident_bytes"] = int(max(rss))
    name = kv_cache_usage_name(scrapes[-1])
    if name:
        usage = [m[name] for m in (during or scrapes) if name in m]
        if usage:
            out["kv_cache_usage_max"] = round(max(usage), 6)
            out["kv_cache_usage_mean"] = round(sum(usage) / len(usage), 6)
        out["kv_cache_metric"] = name
    if all(v is None for k, v in out.items() if k != "kv_cache_metric"):
        return None
    return out


async def scrape(client, url: str, timeout_s: float = 5.0) -> Metrics | None:
    """GET `url` through the runner's `JsonClient` and parse it; None when there is no such
    endpoint or it cannot be read (server metrics are optional)."""
    answer = await client.get(url, timeout_s=timeout_s)
    if answer is None or answer[0] != 200:
        return None
    try:
        return parse_prometheus(answer[1].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
