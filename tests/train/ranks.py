"""Run a test's worker as real ranks: one spawned process per rank on a free loopback port, each
putting (rank, result) on a queue; a rank that failed reports its traceback as result["error"]."""

from __future__ import annotations

import multiprocessing as mp
import socket


def run_ranks(worker, world: int, *args) -> dict:
    """`worker(rank, port, *args, out)` on `world` processes; each rank's result, none failed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, port, *args, out)) for r in range(world)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    for r, res in results.items():
        assert "error" not in res, f"rank {r}:\n{res['error']}"
    return results
