"""The provider batches recorded in run folders: `taskc batches [--cancel ID]`, `taskc eval
--resume RUN_DIR`, and `taskc score` on an OpenAI batch output file.

Each run folder that used `--batch` holds `batches.json` (taskc.runner.batch_state). Listing
reads every one under a runs folder, one row per batch id (a batch adopted by a later run is
listed once, collected when any run collected it), and asks the provider for its live status
where the key is set; cancelling finds the record, rebuilds the backend it was sent with and
calls the provider's cancel endpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from taskc.backends import make_backend
from taskc.backends.base import BackendUnavailable
from taskc.backends.config import ModelConfig
from taskc.errors import TaskcError
from taskc.runner.batch_types import BatchError, BatchGone, index_of_custom_id
from taskc.runner.batch_state import all_records, read_records
from taskc.runner.http import JsonClient

IN_FLIGHT = ("submitting", "submitted")


def recorded_batches(root: Path) -> list[dict[str, Any]]:
    """One row per recorded batch id under `root`: the record, its run folder(s) and state."""
    if not root.exists():
        raise TaskcError(f"no such runs folder: {root}")
    rows: dict[str, dict[str, Any]] = {}
    for folder, rec in all_records(root):
        batch_id = rec.get("id")
        if not batch_id:
            continue
        row = rows.setdefault(batch_id, {**rec, "runs": []})
        row["runs"].append(str(folder))
        if rec.get("state") not in IN_FLIGHT:
            row["state"], row["status"] = rec.get("state"), rec.get("status") or row.get("status")
    return list(rows.values())


def _backend(rec: dict[str, Any]):
    config = ModelConfig(name=f"{rec.get('backend')}:{rec.get('model')}", backend=str(rec.get("backend")),
                         model=str(rec.get("model")), base_url=rec.get("base_url"),
                         api_key_env=rec.get("api_key_env"), mode=rec.get("mode"))
    return make_backend(config, None)


async def _live(rows: list[dict[str, Any]]) -> None:
    async with JsonClient(max_attempts=2, timeout_s=30) as client:
        for row in rows:
            try:
                status = await _backend(row).batch_poll(client, row["id"])
            except BatchGone:
                row["live"] = "unknown to the provider"
            except (BackendUnavailable, BatchError) as exc:
                row["live"] = f"? ({exc})"
            else:
                counts = ", ".join(f"{k} {v}" for k, v in status.counts.items() if v)
                row["live"] = status.status + (f" ({counts})" if counts else "")


def list_batches(root: Path, show_all: bool = False, live: bool = True) -> list[dict[str, Any]]:
    """The batches in flight under `root` (all recorded ones with `show_all`), with the
    provider's live status in `live` unless `live` is False."""
    rows = [r for r in recorded_batches(root) if show_all or r.get("state") in IN_FLIGHT]
    if live and rows:
        asyncio.run(_live(rows))
    return rows


def cancel_batch(root: Path, batch_id: str) -> str:
    """Cancel a recorded batch at its provider; its status after the call."""
    rows = {r["id"]: r for r in recorded_batches(root)}
    if batch_id not in rows:
        known = ", ".join(sorted(rows)[:10]) or "none"
        raise TaskcError(f"no batch '{batch_id}' is recorded under {root} (recorded: {known})")
    row = rows[batch_id]
    try:
        backend = _backend(row)
    except BackendUnavailable as exc:
        raise TaskcError(f"cannot cancel batch {batch_id}: {exc}") from None

    async def go():
        async with JsonClient(max_attempts=3, timeout_s=30) as client:
            return await backend.batch_cancel(client, batch_id)

    try:
        status = asyncio.run(go())
    except BatchGone as exc:
        raise TaskcError(f"batch {batch_id}: the provider does not know it ({exc})") from None
    except BatchError as exc:
        raise TaskcError(f"cannot cancel batch {batch_id}: {exc}") from None
    return status.status


def resume_options(options: Any, contracts: list[Any], configs: list[ModelConfig]) -> Any:
    """`options` for `taskc eval --resume RUN_DIR`: RUN_DIR must be a run folder of one of the
    compiled contracts (and, where it recorded batches, of one of the models chosen); the runs
    folder becomes RUN_DIR's, so the cache and the recorded batches are the ones it used."""
    run_dir = Path(options.resume)
    contract_file = run_dir / "contract.json"
    try:
        import json

        recorded = json.loads(contract_file.read_text(encoding="utf-8")).get("contract_id")
    except (OSError, ValueError, AttributeError):
        raise TaskcError(f"--resume {run_dir}: not a run folder (no readable contract.json)") from None
    ids = {c.id: c for c in contracts}
    if recorded not in ids:
        names = ", ".join(f"{c.name} {c.short_id}" for c in contracts)
        raise TaskcError(f"--resume {run_dir}: that run used contract {str(recorded)[:12]}, the spec now compiles to "
                         f"{names}: the spec changed since; run without --resume")
    records = read_records(run_dir / "batches.json")
    chosen = {(c.backend, c.model) for c in configs}
    sent = {(r.get("backend"), r.get("model")) for r in records if r.get("namespace") == recorded}
    if sent and not sent & chosen:
        were = ", ".join(sorted(f"{b}:{m}" for b, m in sent))
        raise TaskcError(f"--resume {run_dir}: its batches were sent to {were}; choose that model to resume them")
    return replace(options, out=run_dir.parent.parent, resume=run_dir)


def batch_output_predictions(lines: list[Any]) -> list[Any]:
    """OpenAI batch output lines (`{"custom_id", "response": {"body"}}`, as the OpenAI API and
    `vllm run-batch` write them for a file taskc made) as predictions `{index, repeat, raw}`;
    other lines unchanged. A line whose request failed becomes a prediction without output."""
    from taskc.backends.openai_chat import read_completion

    out = []
    for line in lines:
        if not (isinstance(line, dict) and "custom_id" in line and ("response" in line or "error" in line)):
            out.append(line)
            continue
        where = index_of_custom_id(str(line["custom_id"]))
        if where is None:
            raise ValueError(f"batch output line for custom_id {line['custom_id']!r}: not a custom_id taskc made "
                             "(t<row>-<repeat>-<hash>)")
        response = line.get("response") or {}
        body = response.get("body") if isinstance(response, dict) else None
        raw = None
        if isinstance(body, dict) and 200 <= int(response.get("status_code") or 0) < 300:
            try:
                raw = read_completion(body)[0]
            except (KeyError, IndexError, TypeError, ValueError):
                raw = None
        out.append({"index": where[0], "repeat": where[1], "raw": raw})
    return out
