"""Draw the writer-process curve of ``bench_postgres_scale.py`` as an SVG picture.

Run ``python benchmarks/plot_postgres_writers.py`` after
``python benchmarks/bench_postgres_scale.py --writers-json docs/images/postgres-writers.json``:
it reads that JSON (or the file given as ``--json``) and writes
``docs/images/postgres-writers.svg`` (or ``--svg``). Two panels: documents added per second
by N writer processes, monespace beside the raw psycopg inserts of the same run, and each
side's scaling against its own rate with the fewest processes, beside perfect scaling.
Every value drawn comes from the JSON; matplotlib is needed (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
JSON = ROOT / "docs" / "images" / "postgres-writers.json"
SVG = ROOT / "docs" / "images" / "postgres-writers.svg"


def draw(curve: dict[str, Any], svg: Path) -> None:
    mpl.rcParams["svg.hashsalt"] = "monespace"  # the same picture for the same figures
    mpl.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    points = sorted(curve["points"], key=lambda p: p["writers"])
    writers = [p["writers"] for p in points]
    ours = [p["monespace"] for p in points]
    raw = [p["raw"] for p in points]
    base = points[0]

    fig = Figure(figsize=(10, 4.2))
    rates, scaling = fig.subplots(1, 2)
    rates.plot(writers, raw, "s--", color="tab:gray", label="raw psycopg INSERT (autocommit)")
    rates.plot(writers, ours, "o-", color="tab:blue", label="monespace add_document")
    for x, y in zip(writers, ours, strict=True):
        rates.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center")
    for x, y in zip(writers, raw, strict=True):
        rates.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center")
    rates.set_title("Documents (4 KiB) added per second")
    rates.set_ylabel("operations per second, all processes")
    rates.set_ylim(bottom=0, top=max(raw + ours) * 1.15)

    ideal = [w / base["writers"] for w in writers]
    scaling.plot(writers, ideal, ":", color="black", label="perfect scaling")
    scaling.plot(
        writers, [r / base["raw"] for r in raw], "s--", color="tab:gray", label="raw psycopg"
    )
    scaling.plot(
        writers,
        [o / base["monespace"] for o in ours],
        "o-",
        color="tab:blue",
        label="monespace",
    )
    scaling.axhline(1.0, color="tab:red", linewidth=0.6)
    scaling.set_title(
        f"Rate against {base['writers']} writer" + ("s" if base["writers"] > 1 else "")
    )
    scaling.set_ylabel("speed-up")
    scaling.set_ylim(bottom=0)

    for axes in (rates, scaling):
        axes.set_xscale("log", base=2)
        axes.set_xticks(writers, [str(w) for w in writers])
        axes.minorticks_off()
        axes.set_xlabel("writer processes")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
    machine = curve.get("machine", {})
    fig.suptitle(
        f"monespace on PostgreSQL {machine.get('postgresql', '').split(' ')[0]}, "
        f"{machine.get('cores', '?').split(',')[0]} cores, {curve['date'][:10]}, "
        f"{curve['window_seconds']:g} s per point",
        fontsize="medium",
    )
    fig.tight_layout()
    svg.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(svg, format="svg", metadata={"Date": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=JSON, help=f"default {JSON.relative_to(ROOT)}")
    parser.add_argument("--svg", type=Path, default=SVG, help=f"default {SVG.relative_to(ROOT)}")
    args = parser.parse_args()
    curve = json.loads(args.json.read_text(encoding="utf-8"))
    draw(curve, args.svg)
    print(f"{args.svg} written from {args.json}")


if __name__ == "__main__":
    main()
