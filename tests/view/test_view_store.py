"""Big samples files met together are read in worker processes while the gold is read here; the
page and the columns are the same as read in this process."""

from __future__ import annotations

import numpy as np

from taskc.view import store as store_module
from taskc.view.contracts import default_search
from taskc.view.service import Viewer

ARRAYS = ("offsets", "ends", "line", "index", "repeat", "error", "invalid", "cached", "out_key", "out_code")


def _viewer(made) -> Viewer:
    root, _ = made
    return Viewer(root / "runs", default_search(root / "runs", root, [root / "specs"]))


def _tickets(viewer: Viewer) -> str:
    (gid,) = [g["id"] for g in viewer.index()["groups"] if g["task"] == "tickets"]
    return gid


def test_worker_processes_give_the_page_and_columns_read_here(made, monkeypatch):
    serial = _viewer(made)
    monkeypatch.setattr(store_module, "PARALLEL_BYTES", 1)  # every file counts as big
    parallel = _viewer(made)
    try:
        gid = _tickets(parallel)
        runs = [r["id"] for r in parallel.index()["groups"][[g["id"] for g in parallel.index()["groups"]].index(gid)]["runs"]]
        assert len(runs) >= 2
        page = parallel.compare(gid, runs, [], "", 0, 50)
        assert parallel.store._pool is not None and not parallel.store._pending  # read there, collected here
        monkeypatch.setattr(store_module, "PARALLEL_BYTES", 10 ** 12)
        assert serial.compare(gid, runs, [], "", 0, 50) == page
        assert serial.store._pool is None
        for rid in runs:
            a, b = parallel.store.columns(rid), serial.store.columns(rid)
            assert a.n == b.n > 0 and a.vocab == b.vocab and a.problems == b.problems
            for name in ARRAYS:
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
            assert np.array_equal(a.latency_ms, b.latency_ms, equal_nan=True)
            assert a.scores.keys() == b.scores.keys()
            assert all(np.array_equal(a.scores[k], b.scores[k], equal_nan=True) for k in a.scores)
    finally:
        parallel.store.close()
        serial.store.close()
    assert parallel.store._pool is None


def test_one_file_or_a_file_already_read_stays_in_this_process(made, monkeypatch):
    monkeypatch.setattr(store_module, "PARALLEL_BYTES", 1)
    viewer = _viewer(made)
    try:
        gid = _tickets(viewer)
        (group,) = [g for g in viewer.index()["groups"] if g["id"] == gid]
        first = group["runs"][0]["id"]
        viewer.compare(gid, [first], [], "", 0, 50)
        assert viewer.store._pool is None  # one run: nothing to do in parallel
        viewer.store.prefetch([first, first])
        assert viewer.store._pool is None and not viewer.store._pending
    finally:
        viewer.store.close()


def test_a_killed_worker_costs_a_read_here_not_an_error(made, monkeypatch):
    import os
    import signal

    monkeypatch.setattr(store_module, "PARALLEL_BYTES", 1)
    viewer = _viewer(made)
    reference = _viewer(made)
    try:
        gid = _tickets(viewer)
        (group,) = [g for g in viewer.index()["groups"] if g["id"] == gid]
        runs = [r["id"] for r in group["runs"]]
        viewer.store.prefetch(runs)
        for pid in list(viewer.store._pool._processes):
            os.kill(pid, signal.SIGKILL)
        monkeypatch.setattr(store_module, "PARALLEL_BYTES", 10 ** 12)
        expected = reference.compare(gid, runs, [], "", 0, 50)
        monkeypatch.setattr(store_module, "PARALLEL_BYTES", 1)
        assert viewer.compare(gid, runs, [], "", 0, 50) == expected
        viewer.store._columns.clear()
        viewer.store.prefetch(runs)  # the broken pool is dropped, not used again
        assert viewer.compare(gid, runs, [], "", 0, 50) == expected
    finally:
        viewer.store.close()
        reference.store.close()
