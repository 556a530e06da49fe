"""A training worker's first run: how long a fresh pool takes to answer its first /train run.

Each round starts a new `TrainingPool` of one process and times one small digits run from the
request to its result: the process start, its imports, loading the digits and the run itself.
A second run on the same, now warm, worker is timed too: the difference is what a learner waits
for on a cold worker. A separate fresh interpreter loads the digits alone, and the modules it
imported are checked for scikit-learn and SciPy.

    python bench/worker.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.training.pool import TrainingPool  # noqa: E402

#: The smallest digits run: a worker's cost, not the network's, is what this measures.
RUN = {"dataset": "digits", "hidden_layers": [16], "epochs": 1}
LOAD_ONLY = """
import sys, time
started = time.perf_counter()
from app.training.datasets import load_dataset
load_dataset("digits")
elapsed = time.perf_counter() - started
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy"})
print(elapsed, ",".join(heavy) or "-")
"""


async def first_and_second_run() -> tuple[float, float]:
    """Seconds to the first run's result on a new pool, and to a second run's on the same one."""
    pool = TrainingPool(size=1, queue=0)
    try:
        started = time.perf_counter()
        await pool.run(dict(RUN))
        first = time.perf_counter() - started
        started = time.perf_counter()
        await pool.run(dict(RUN))
        return first, time.perf_counter() - started
    finally:
        pool.close()


def load_in_fresh_interpreter() -> tuple[float, str]:
    """Seconds to import the dataset module and load the digits, and the heavy modules seen."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD_ONLY], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    out.check_returncode()
    seconds, heavy = out.stdout.split()
    return float(seconds), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    firsts, seconds, loads = [], [], []
    heavy = "-"
    for _ in range(args.rounds):
        first, second = asyncio.run(first_and_second_run())
        firsts.append(first)
        seconds.append(second)
        load, heavy = load_in_fresh_interpreter()
        loads.append(load)
    print(f"median of {args.rounds} rounds, one worker, run {json.dumps(RUN)}")
    print(f"first run on a new worker   {statistics.median(firsts) * 1000:8.0f} ms")
    print(f"same run on the warm worker {statistics.median(seconds) * 1000:8.0f} ms")
    print(f"digits load, fresh process  {statistics.median(loads) * 1000:8.0f} ms")
    print(f"scikit-learn/SciPy imported: {heavy}")


if __name__ == "__main__":
    main()
