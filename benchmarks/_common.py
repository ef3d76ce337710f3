"""Shared helpers for the benchmark scripts: timing, the machine, and the table of figures.

A benchmark script measures pairs: a monespace figure and a raw baseline doing the same
work with the standard library (or the bare dependency), in the same run, on the same
machine. It hands :class:`Figure` objects to :func:`print_table`; the ratio column is
``monespace / baseline`` for rates (1.00x: as fast as the raw code; 0.25x: a quarter of
its rate).

Timing follows :mod:`timeit`'s approach: an operation ``op(n)`` performs *n* units of
work; :func:`calibrate` picks *n* so that one call lasts about *seconds*, then each repeat
times one call. :func:`compare` alternates the two sides' repeats, so that a drift of the
machine (another process, the page cache, a WAL checkpoint) touches both alike. Reported
values are medians over the repeats, with the spread ``(max - min) / median``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

Op = Callable[[int], object]


# --- timing ---------------------------------------------------------------------------------


def _timed(op: Op, n: int) -> float:
    start = time.perf_counter()
    op(n)
    return time.perf_counter() - start


def calibrate(op: Op, seconds: float) -> int:
    """How many units of *op* take about *seconds*. The calibration calls warm *op* up."""
    n = 1
    while True:
        elapsed = _timed(op, n)
        if elapsed >= seconds / 5 or n >= 1 << 30:
            return max(1, round(n * seconds / max(elapsed, 1e-9)))
        n *= 2 if elapsed > seconds / 50 else 10


@dataclass
class Rates:
    """Units per second, one value per repeat."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        return (max(self.samples) - min(self.samples)) / self.median


def measure(op: Op, *, seconds: float, repeat: int, per_unit: int = 1) -> Rates:
    """Rate of *op* in items per second (*per_unit* items for each unit of work)."""
    n = calibrate(op, seconds)
    return Rates([n * per_unit / _timed(op, n) for _ in range(repeat)])


def compare(
    op: Op,
    baseline: Op,
    *,
    seconds: float,
    repeat: int,
    per_unit: int = 1,
    baseline_per_unit: int | None = None,
) -> tuple[Rates, Rates]:
    """Rates of *op* and *baseline*, their repeats interleaved."""
    b_per_unit = per_unit if baseline_per_unit is None else baseline_per_unit
    n_op, n_base = calibrate(op, seconds), calibrate(baseline, seconds)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeat):
        ours.append(n_op * per_unit / _timed(op, n_op))
        theirs.append(n_base * b_per_unit / _timed(baseline, n_base))
    return Rates(ours), Rates(theirs)


# --- figures --------------------------------------------------------------------------------


@dataclass
class Figure:
    """One line of the table: a monespace rate beside its raw baseline (if it has one).

    :param scale: multiply the rates by this to print them (e.g. items/s to MiB/s).
    """

    name: str
    unit: str
    value: Rates
    baseline: Rates | None = None
    baseline_label: str = ""
    note: str = ""
    scale: float = 1.0

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        return self.value.median / self.baseline.median

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "name": self.name,
            "unit": self.unit,
            "monespace": self.value.median * self.scale,
            "monespace_samples": [s * self.scale for s in self.value.samples],
        }
        if self.baseline is not None:
            data["baseline"] = self.baseline.median * self.scale
            data["baseline_samples"] = [s * self.scale for s in self.baseline.samples]
            data["baseline_label"] = self.baseline_label
            data["ratio"] = self.ratio
        if self.note:
            data["note"] = self.note
        return data


def fmt(value: float) -> str:
    """A rate for humans: thousands separated from 100 up, three significant digits below."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3g}"


def _rows(figures: Sequence[Figure]) -> tuple[list[list[str]], list[str]]:
    rows: list[list[str]] = []
    legend: list[str] = []
    for figure in figures:
        name = figure.name
        base = ratio = spread_b = "-"
        if figure.baseline is not None:
            if figure.baseline_label not in legend:
                legend.append(figure.baseline_label)
            name = f"{name} [{legend.index(figure.baseline_label) + 1}]"
            base = fmt(figure.baseline.median * figure.scale)
            ratio = f"{figure.ratio:.2f}x"
            spread_b = f"{figure.baseline.spread:.0%}"
        spread = f"{figure.value.spread:.0%} / {spread_b}"
        rows.append(
            [name, figure.unit, fmt(figure.value.median * figure.scale), base, ratio, spread]
        )
    return rows, legend


_HEADER = ["figure", "unit", "monespace", "baseline", "ratio", "spread m/b"]


def print_grid(header: Sequence[str], rows: Sequence[Sequence[str]], *, markdown: bool) -> None:
    """Print rows under *header*: aligned text (first column left, the others right), or a
    Markdown table."""
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join([row[0].ljust(widths[0]), *cells]))


def print_table(figures: Sequence[Figure], *, title: str = "", markdown: bool = False) -> None:
    """Print *figures* as an aligned text table (or a Markdown one), then the baselines."""
    rows, legend = _rows(figures)
    if title:
        print(f"\n{title}\n")
    print_grid(_HEADER, rows, markdown=markdown)
    if legend:
        print()
        for i, label in enumerate(legend, 1):
            print(f"[{i}] {label}")
    notes = [f for f in figures if f.note]
    if notes:
        print()
        for figure in notes:
            print(f"- {figure.name}: {figure.note}")


# --- the machine ----------------------------------------------------------------------------


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def filesystem_of(path: str | os.PathLike[str]) -> str:
    """``fstype device on mountpoint (options)`` for the mount that holds *path* (Linux)."""
    target = os.path.realpath(path)
    best: list[str] | None = None
    try:
        with open("/proc/self/mounts", encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                mount = parts[1].replace("\\040", " ")
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and (best is None or len(mount) >= len(best[1])):
                    best = parts
    except OSError:
        return "unknown"
    if best is None:
        return "unknown"
    return f"{best[2]} {best[0]} on {best[1]} ({best[3]})"


def describe_machine(
    data_dir: str | os.PathLike[str], *, packages: Iterable[str] = (), extra: Mapping[str, str] = ()
) -> dict[str, str]:
    """What the figures depend on: CPU, cores, memory, Python, SQLite, versions, filesystem."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    flags = _proc_field("/proc/cpuinfo", "flags") or ""
    if "hypervisor" in flags.split():
        cpu += " (virtual machine)"
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical, {usable} usable by this process",
        "memory": f"{int(mem_kb.split()[0]) / 1024**2:.1f} GiB" if mem_kb else "unknown",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
    }
    for name in packages:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = "not installed"
    info.update(extra)
    info["data dir"] = f"{data_dir}: {filesystem_of(data_dir)}"
    return info


def revision(path: str | os.PathLike[str] = ".") -> str:
    """The git commit the code under *path* comes from, flagged when the tree has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def print_machine(info: Mapping[str, str]) -> None:
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")


# --- command line and output ----------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short run (smoke test, noisier)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    p.add_argument(
        "--dir",
        metavar="DIR",
        help="where to create the temporary databases (default: the system temp dir); "
        "the durability figures are those of this directory's disk",
    )
    return p


@dataclass
class Report:
    """Everything one run measured, for ``--json``."""

    script: str
    mode: str
    machine: dict[str, str]
    parameters: dict[str, object] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    #: Other results of the run (latency distributions...), written as they are.
    extra: dict[str, object] = field(default_factory=dict)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def write(self, path: str | os.PathLike[str]) -> None:
        data = asdict(self)
        data["figures"] = [f.as_dict() for f in self.figures]
        extra = data.pop("extra")
        data.update(extra)
        data["argv"] = sys.argv
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def save(self, path: str | os.PathLike[str] | None) -> None:
        """:meth:`write` to *path* and say so, when ``--json`` gave one."""
        if path is not None:
            self.write(path)
            print(f"figures written to {path}")
