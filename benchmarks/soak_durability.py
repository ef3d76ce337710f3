"""Soak run of the kill -9 harness: thousands of SIGKILLs, nothing acknowledged lost.

The same harness as ``tests/test_durability.py`` (:mod:`monespace.testing.durability`),
run long: a child adds documents to a real SQLite file and prints each acknowledged id;
the parent kills it at random moments, reopens the space and checks every acknowledged
document byte for byte, that nothing torn is visible, the audit chain and
``PRAGMA integrity_check``. A fresh file every ``--cycles-per-space`` cycles keeps each
check short.

```console
$ nice python benchmarks/soak_durability.py --cycles 1000 --json soak.json
$ python benchmarks/soak_durability.py --quick                  # 20 cycles
$ python benchmarks/soak_durability.py --seed 1234 --cycles 50  # replay a run's delays
```

It prints the machine, one progress line every 50 cycles and the figures: kills (early
ones, during the child's start), acknowledged writes, lost, torn, audit or integrity
failures, the recovery time (reopening the space) at p50/p95/max. It exits with status 1
if any cycle failed, and prints the seed to replay it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import Report, describe_machine, parser, print_machine, revision
from monespace.testing.durability import KillCycle, run_kill_cycles


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=1000, help="kills (default 1000)")
    p.add_argument("--seed", type=int, default=None, help="replay a run")
    p.add_argument("--window", type=float, default=0.5, help="seconds the kill lands within")
    p.add_argument("--cycles-per-space", type=int, default=50)
    args = p.parse_args()
    cycles = 20 if args.quick else args.cycles
    directory = Path(tempfile.mkdtemp(prefix="monespace-soak-", dir=args.dir))
    machine = describe_machine(directory, packages=("monespace",))
    machine["revision"] = revision(Path(__file__).parent)
    print_machine(machine)
    started = time.perf_counter()

    def progress(cycle: KillCycle) -> None:
        if not cycle.ok:
            print(f"cycle {cycle.cycle}: FAILED {cycle}", flush=True)
        if (cycle.cycle + 1) % 50 == 0:
            elapsed = time.perf_counter() - started
            print(f"{cycle.cycle + 1} kills, {elapsed:.0f} s", flush=True)

    report = run_kill_cycles(
        directory,
        cycles,
        seed=args.seed,
        window=args.window,
        cycles_per_space=args.cycles_per_space,
        progress=progress,
    )
    elapsed = time.perf_counter() - started
    recovery = sorted(c.recovery_seconds for c in report.cycles)
    p95 = recovery[min(len(recovery) - 1, int(0.95 * len(recovery)))]
    figures = {
        "seed": report.seed,
        "kills": len(report.cycles),
        "early kills (child starting)": sum(c.early for c in report.cycles),
        "kills among writes": sum(c.acknowledged > 0 for c in report.cycles),
        "acknowledged writes": report.acknowledged,
        "documents found": report.documents,
        "lost acknowledged": report.lost,
        "torn": report.torn,
        "audit chain failures": sum(not c.audit_ok for c in report.cycles),
        "integrity_check failures": sum(not c.integrity_ok for c in report.cycles),
        "recovery p50 (ms)": round(statistics.median(recovery) * 1000, 2),
        "recovery p95 (ms)": round(p95 * 1000, 2),
        "recovery max (ms)": round(recovery[-1] * 1000, 2),
        "elapsed (s)": round(elapsed),
    }
    print()
    for name, value in figures.items():
        print(f"{name:<30} {value}")
    if args.json:
        run = Report("soak_durability", "quick" if args.quick else "full", machine)
        run.parameters = {"cycles": cycles, "window": args.window}
        run.extra = {"results": figures}
        run.write(args.json)
    if not report.ok:
        print(f"FAILED: replay with --seed {report.seed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
