"""`taskc bench --find-max`: the highest rate a server sustains within a p95 latency target."""

from __future__ import annotations

import math
from typing import Any, Awaitable, Callable

SUSTAINED_FRACTION = 0.98
MAX_ERROR_RATE = 0.01


def passes(stats: dict[str, Any], p95_ms: float | None) -> tuple[bool, str]:
    """Whether a run sustained its rate: the client kept to its schedule (sent >= 98% of the
    scheduled requests inside the window, send lag p99 within 10% of the p95 target, at least
    10 ms), achieved >= 98% of offered (less two standard errors of its window-edge noise), error
    rate < 1%, p95 within the target. The reason when not."""
    lag = (stats.get("send_lag_ms") or {}).get("p99")
    if p95_ms is not None:  # what matters is the lag against the target the latency is judged by
        client_ok = lag is None or lag <= max(10.0, 0.1 * p95_ms)
    else:
        client_ok = stats.get("generator_ok", True)
    sent, offered = stats.get("sent_in_window"), stats.get("offered_in_window")
    if not client_ok or (sent is not None and offered and sent < SUSTAINED_FRACTION * offered):
        return False, f"client fell behind (send lag p99 {lag or 0:.1f} ms)"
    achieved = stats.get("achieved")
    allowance = 2 * (stats.get("achieved_stderr") or 0.0)
    if achieved is None or achieved < SUSTAINED_FRACTION - allowance:
        return False, f"achieved {0 if achieved is None else achieved:.1%} of offered"
    if (stats.get("error_rate") or 0.0) >= MAX_ERROR_RATE:
        return False, f"error rate {stats['error_rate']:.2%}"
    p95 = (stats.get("latency_ms") or {}).get("p95")
    if p95_ms is not None and (p95 is None or p95 > p95_ms):
        return False, f"p95 {p95 if p95 is None else round(p95, 1)} ms > {p95_ms:g} ms"
    return True, "sustained"


async def search_max_rate(trial: Callable[[float], Awaitable[dict[str, Any]]], p95_ms: float, start_rate: float,
                          factor: float = 2.0, max_rate: float | None = None, bisect_steps: int = 4,
                          tolerance: float = 0.05, max_doublings: int = 16, max_halvings: int = 4,
                          cooldown: Callable[[], Awaitable[None]] | None = None) -> dict[str, Any]:
    """Step the rate up geometrically from `start_rate` until a run fails `passes`, then bisect
    (geometric midpoints) between the last pass and the first failure for up to `bisect_steps`
    runs or until they are within `tolerance`. When `start_rate` already fails, step down first."""
    steps: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any]] | None = None
    fail: float | None = None
    limited_by = None

    async def run(rate: float) -> bool:
        nonlocal limited_by, best
        if steps and cooldown is not None:
            await cooldown()
        stats = await trial(rate)
        ok, reason = passes(stats, p95_ms)
        steps.append({"rate": round(rate, 3), "requests_per_s": stats.get("requests_per_s"),
                      "achieved": stats.get("achieved"), "p95_ms": (stats.get("latency_ms") or {}).get("p95"),
                      "error_rate": stats.get("error_rate"), "pass": ok, "reason": reason})
        if not ok and reason.startswith("client"):
            limited_by = "client"
        if ok and (best is None or rate > best[0]):
            best = (rate, stats)
        return ok

    rate = start_rate
    if await run(rate):
        for _ in range(max_doublings):
            if max_rate is not None and rate >= max_rate:
                break
            nxt = rate * factor if max_rate is None else min(rate * factor, max_rate)
            if await run(nxt):
                rate = nxt
            else:
                fail = nxt
                break
    else:
        fail = rate
        for _ in range(max_halvings):
            if limited_by:
                break
            rate = rate / factor
            if await run(rate):
                break
            fail = rate
    while (best is not None and fail is not None and limited_by is None and bisect_steps > 0
           and fail / best[0] > 1 + tolerance):
        bisect_steps -= 1
        mid = math.sqrt(best[0] * fail)
        if not await run(mid):
            fail = mid
    return {
        "p95_target_ms": p95_ms,
        "max_sustained_rate": round(best[0], 3) if best else None,
        "first_failing_rate": round(fail, 3) if fail is not None else None,
        "limited_by": limited_by or ("server" if fail is not None else "max_rate"),
        "steps": steps,
        "best": best[1] if best else None,
    }

