"""The training queue (TRAINING_BACKEND=queue) against the local backend, on PostgreSQL.

1. Per-run overhead: one small run at a time over POST /train (JSON), alternating between a
   local-backend server and a queue-backend server with one warm worker process; the median of
   the differences (queue minus local) of each pair.
2. Throughput: 24 small runs posted at once to a queue-backend server, runs per second (best of
   3 rounds) with `backprop worker --processes 1` and with `--processes 2`.

Everything runs on 127.0.0.1, in a schema of its own (dropped at the end) of the database named by
BENCH_DATABASE_URL (default: the test database at 127.0.0.1:5432).

    .venv/bin/python bench/train_queue.py [--runs 40]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import make_engine, upgrade  # noqa: E402
from tests.live import LiveServer, server_env  # noqa: E402
from tests.queue_live import Queue, Worker, wait_until  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: The overhead's small run: a few milliseconds of training in 5 epochs.
SMALL = {"dataset": "xor", "hidden_layers": [8], "epochs": 5}
#: The throughput's small run: about a quarter of a second of training.
BATCH = {"dataset": "digits", "hidden_layers": [256, 256], "epochs": 20}
CONCURRENT = 24
#: Throughput is the best of this many rounds (the machine is shared).
ROUNDS = 3


def timed(client: httpx.Client, base: str, body: dict) -> float:
    started = time.perf_counter()
    response = client.post(base + "/train", json=body, timeout=120)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def overhead(local: str, queued: str, runs: int) -> tuple[list[float], list[float]]:
    """Sequential runs, alternating between the backends so that both see the same machine."""
    local_times, queue_times = [], []
    with httpx.Client() as client:  # kept-alive connections, as a browser's
        for seed in range(3):  # warm: processes, connections, prepared statements
            timed(client, local, {**SMALL, "seed": seed})
            timed(client, queued, {**SMALL, "seed": seed})
        for seed in range(runs):
            local_times.append(timed(client, local, {**SMALL, "seed": seed}))
            queue_times.append(timed(client, queued, {**SMALL, "seed": seed}))
    return local_times, queue_times


def throughput(base: str) -> float:
    """Runs per second for CONCURRENT runs posted at once, best of ROUNDS."""
    bodies = [{**BATCH, "seed": seed} for seed in range(CONCURRENT)]
    rates = []
    with httpx.Client(limits=httpx.Limits(max_connections=CONCURRENT)) as client:
        timed(client, base, {**BATCH, "epochs": 1})
        for _ in range(ROUNDS):
            started = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENT) as pool:
                list(pool.map(lambda body: timed(client, base, body), bodies))
            rates.append(CONCURRENT / (time.perf_counter() - started))
    return max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="sequential runs per backend")
    args = parser.parse_args()

    schema = f"bench_queue_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    queue_url = url.render_as_string(hide_password=False)
    servers: list[LiveServer] = []
    started: list[Worker] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            engine = make_engine(queue_url)
            upgrade(engine)
            queue_db = Queue(engine)
            # one client posts every run: lift the per-client limits meant for many learners
            secret = {
                "SECRET_KEY": "bench-secret-key-0123456789abcdefghij",
                "TRAIN_PER_CLIENT": str(CONCURRENT),
                "TRAIN_PER_MINUTE": "100000",
            }
            local_env = {**server_env(folder / "local"), **secret}
            local_env.update(TRAIN_WORKERS="2", TRAIN_QUEUE=str(CONCURRENT))
            queue_env = {
                **server_env(folder / "queue"),
                **secret,
                "DATABASE_URL": queue_url,
                "TRAINING_BACKEND": "queue",
                "TRAIN_QUEUE_NAME": schema,
            }
            local = LiveServer(local_env, log_path=folder / "local.log").start()
            queued = LiveServer(queue_env, log_path=folder / "queue.log").start()
            servers += [local, queued]

            def workers(processes: int) -> Worker:
                worker = Worker(queue_env, processes, folder / f"worker-{processes}.log")
                started.append(worker)
                wait_until(lambda: queue_db.live_workers() == processes, 60, "workers")
                return worker

            one = workers(1)
            local_times, queue_times = overhead(local.url, queued.url, args.runs)
            one_rate = throughput(queued.url)
            one.stop()
            two = workers(2)
            two_rate = throughput(queued.url)
            two.stop()
            local_rate = throughput(local.url)
            engine.dispose()
    finally:
        for worker in started:
            worker.stop()
        for server in servers:
            server.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    ms = lambda values: statistics.median(values) * 1000  # noqa: E731
    p90 = lambda values: statistics.quantiles(values, n=10)[-1] * 1000  # noqa: E731
    print(f"per-run wall time, {args.runs} sequential JSON runs of {SMALL}")
    print(f"  local backend    median {ms(local_times):6.1f} ms   p90 {p90(local_times):6.1f} ms")
    print(f"  queue backend    median {ms(queue_times):6.1f} ms   p90 {p90(queue_times):6.1f} ms")
    paired = [q - lo for q, lo in zip(queue_times, local_times, strict=True)]
    print(f"  queue overhead   median {ms(paired):6.1f} ms, queue minus local by pair (target 50)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"throughput, {CONCURRENT} concurrent runs of {BATCH}, best of {ROUNDS}")
    print(f"  queue, 1 worker process   {one_rate:5.2f} runs/s")
    print(f"  queue, 2 worker processes {two_rate:5.2f} runs/s ({two_rate / one_rate:.2f}x)")
    print(f"  local backend, 2 processes {local_rate:5.2f} runs/s (for reference)")


if __name__ == "__main__":
    main()
