"""Run the chaos job for 20 seeds and print a table: kills and stops injected, stage
resubmissions, fetch failures, heartbeat timeouts, wall time vs. the no-fault run.

    python tests/chaos/report.py [--seeds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chaos_job import chaos_run, clean_run, reference


async def main(seeds: int) -> int:
    expected = reference()
    clean = []
    for _ in range(3):
        result, seconds = await clean_run()
        assert result == expected, "the no-fault run is wrong"
        clean.append(seconds)
    base = statistics.median(clean)
    print(f"no-fault run: median {base:.3f}s of 3")
    print(f"{'seed':>4} {'exact':>5} {'kills':>5} {'stops':>5} {'resub':>5} {'fetchF':>6} "
          f"{'hbLost':>6} {'time':>7} {'x clean':>7}")
    rows = []
    for seed in range(seeds):
        o = await chaos_run(seed)
        exact = o.result == expected
        rows.append((o, exact))
        print(f"{seed:>4} {exact!s:>5} {o.kills:>5} {o.stops:>5} {o.resubmissions:>5} "
              f"{o.fetch_failures:>6} {o.heartbeat_losses:>6} {o.seconds:>6.3f}s "
              f"{o.seconds / base:>6.2f}x")
    outs = [o for o, _ in rows]
    times = [o.seconds for o in outs]
    print(f"total: {sum(e for _, e in rows)}/{len(rows)} exact, "
          f"{sum(o.kills for o in outs)} SIGKILLs, {sum(o.stops for o in outs)} SIGSTOPs, "
          f"{sum(o.resubmissions for o in outs)} stage resubmissions, "
          f"{sum(o.fetch_failures for o in outs)} fetch failures, "
          f"{sum(o.heartbeat_losses for o in outs)} heartbeat timeouts; wall time median "
          f"{statistics.median(times):.3f}s (max {max(times):.3f}s) vs {base:.3f}s with no "
          f"faults")
    return 0 if all(e for _, e in rows) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    sys.exit(asyncio.run(main(parser.parse_args().seeds)))
