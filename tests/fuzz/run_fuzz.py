"""The long fuzz run: ``nox -s fuzz``, or ``python tests/fuzz/run_fuzz.py [options]``.

Tries ``--inputs`` inputs per target (default 1,000,000; the schema target, whose inputs are
whole module schemas, defaults to 100,000) from seed ``--seed``, and prints, per target, the
inputs tried, how many decoded, the failures, the slowest input and the peak memory of one
input (traced with tracemalloc on every ``--memory-every``-th input only, since tracing slows
everything down about threefold; the bounded run in the test suite traces every input). Exits
1 if anything failed. The figures go to docs/reliability.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fuzz import TARGETS, run_one

DEFAULT_INPUTS = {"frames": 1_000_000, "sats": 1_000_000, "schema": 100_000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--inputs", type=int, help="inputs per target")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--memory-every", type=int, default=50)
    args = parser.parse_args()
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}: choose from {', '.join(TARGETS)}")
    failed = False
    for key in args.targets or list(TARGETS):
        target = TARGETS[key]
        stats = target.stats()
        rng = random.Random(f"{args.seed}-{key}")
        draw = target.make(rng, 300)
        count = args.inputs or DEFAULT_INPUTS[key]
        start = time.perf_counter()
        for i in range(count):
            item = draw()
            traced = i % args.memory_every == 0
            if traced:
                tracemalloc.start()
            run_one(stats, target.check, item, memory=traced)
            if traced:
                tracemalloc.stop()
            if (i + 1) % 100_000 == 0:
                print(f"  {key}: {i + 1:,} inputs, {time.perf_counter() - start:.0f} s", flush=True)
        print(f"{stats.summary()}; {time.perf_counter() - start:.0f} s", flush=True)
        for failure in stats.failures[:20]:
            print(f"  FAILURE {failure}")
        failed |= bool(stats.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
