"""Draw the benchmark plots of ``docs/benchmarks.md`` from the benchmarks' JSON results.

Reads what the benchmark scripts wrote (nothing here is typed in by hand):

* ``benchmarks/results/scheduler.json`` (``bench_scheduler.py --json``): add and fire
  throughput, memory per pending schedule, lateness percentiles, for spacetime_sched,
  APScheduler 4.0.0a6 and APScheduler 3.11;
* ``benchmarks/results/client.json`` (``bench_client_side_by_side.py --json``): reducer calls/s
  of our client and the official TypeScript SDK.

and writes PNGs into ``docs/img/`` (committed, shown by the docs site)::

    python benchmarks/plot_results.py [--scheduler PATH] [--client PATH] [--out DIR]

matplotlib comes from the ``bench`` dependency group (``pip install --group bench``, or
``nox -s plots``). The images carry no timestamp, so re-drawing unchanged results gives
unchanged files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE.parent / "docs" / "img"
COLOURS = {
    "spacetime_sched": "#2b7bb9",
    "APScheduler 4.0.0a6": "#d9822b",
    "APScheduler 3.11": "#7a7a7a",
    "spacetimedb (TS SDK)": "#3c9d5d",
}


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        print(f"{path}: missing, its plots are not drawn")
        return None
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _save(fig: Figure, out: Path, name: str, source: dict[str, Any]) -> None:
    fig.text(
        0.01,
        0.005,
        f"{source['command']}  ·  {source['date'][:10]}  ·  shared, loaded machine: noisy",
        fontsize=6.5,
        color="#666666",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    # No Software/date metadata: the file depends on the results only.
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    print(f"written {path}")


def _label_bars(ax: Axes, bars: Any, values: list[float], fmt: str) -> None:
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            fmt.format(value),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )


def _records(doc: dict[str, Any], workload: str) -> list[dict[str, Any]]:
    return [r for r in doc["results"] if r["workload"] == workload and r["result"] is not None]


def plot_throughput(doc: dict[str, Any], out: Path) -> None:
    """Add and fire throughput, every scheduler and backend, on a log scale."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, workload, title in (
        (axes[0], "add", "1. add one-shot schedules"),
        (axes[1], "fire", "2. fire one-shots due at once"),
    ):
        records = _records(doc, workload)
        labels = [
            f"{r['scheduler'].replace('APScheduler', 'APS')}\n"
            f"{r['backend']}, n={r['result']['n']:,}"
            for r in records
        ]
        values = [float(r["result"]["per_second"]) for r in records]
        colours = [COLOURS[r["scheduler"]] for r in records]
        bars = ax.bar(range(len(values)), values, color=colours)
        _label_bars(ax, bars, values, "{:,.0f}")
        ax.set_xticks(range(len(values)), labels, fontsize=6.5, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("schedules per second (log scale)")
        ax.set_title(title, fontsize=10)
    _save(fig, out, "scheduler-throughput.png", doc)


def plot_memory(doc: dict[str, Any], out: Path) -> None:
    """Bytes per pending schedule."""
    records = _records(doc, "memory") + _records(doc, "memory_total")
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    labels = [
        f"{r['scheduler']}"
        + (" (incl. caller's ScheduleAt)" if r["workload"] == "memory_total" else "")
        + f"\nn={r['result']['n']:,}"
        for r in records
    ]
    values = [float(r["result"]["bytes_per_schedule"]) for r in records]
    bars = ax.barh(range(len(values)), values, color=[COLOURS[r["scheduler"]] for r in records])
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f" {value:,.0f} B",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(values)), labels, fontsize=7.5)
    ax.invert_yaxis()
    ax.set_xlabel("bytes per pending schedule (tracemalloc)")
    ax.set_xlim(0, max(values) * 1.25)
    ax.set_title("4. memory per pending schedule", fontsize=10)
    _save(fig, out, "scheduler-memory.png", doc)


def plot_lateness(doc: dict[str, Any], out: Path) -> None:
    """Lateness distributions: percentile against lateness (log), one line per run."""
    records = [r for r in _records(doc, "lateness") if "quantiles_ms" in r["result"]]
    if not records:
        print("no lateness percentiles in the results: lateness plot not drawn")
        return
    fig, ax = plt.subplots(figsize=(10.5, 4.2))
    for r in records:
        q = r["result"]["quantiles_ms"]
        pairs = sorted((float(p), max(float(v), 1e-3)) for p, v in q.items())
        style = "-" if r["backend"] == "asyncio" else "--"
        fires, expected = r["result"]["fires"], r["result"]["expected_fires"]
        ax.plot(
            [v for _, v in pairs],
            [p for p, _ in pairs],
            style,
            marker="o",
            markersize=3,
            color=COLOURS[r["scheduler"]],
            label=f"{r['scheduler']}, {r['backend']} ({fires:,} of {expected:,.0f} fires)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("lateness: start minus intended fire time (ms, log scale)")
    ax.set_ylabel("percentile of fires")
    ax.set_yticks([0, 10, 25, 50, 75, 90, 99])
    ax.grid(True, which="both", alpha=0.3)
    duration = doc.get("lateness_duration_s", 0)
    ax.set_title(f"3. lateness, 10,000 interval schedules of 1 s for {duration:.0f} s", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    _save(fig, out, "scheduler-lateness.png", doc)


def plot_client(doc: dict[str, Any], out: Path) -> None:
    """Reducer calls per second, sequential and pipelined, our client beside the TS SDK."""
    records = [r for r in doc["results"] if "skipped" not in r["result"]]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.38
    for i, mode in enumerate(("sequential", "pipelined")):
        values = [float(r["result"][mode]["calls_per_s"] or 0) for r in records]
        xs = [x + (i - 0.5) * width for x in range(len(records))]
        bars = ax.bar(
            xs,
            values,
            width,
            color=[COLOURS[r["client"]] for r in records],
            alpha=0.55 if mode == "sequential" else 1.0,
            label=f"{mode} ({doc[f'{mode}_calls']:,} calls"
            + (", up to 1,000 in flight)" if mode == "pipelined" else ", one at a time)"),
        )
        _label_bars(ax, bars, values, "{:,.0f}")
    ax.set_xticks(
        range(len(records)), [f"{r['client']}\n{r['runtime']}" for r in records], fontsize=7.5
    )
    ax.set_ylabel("reducer calls per second")
    ax.set_title("add(1, 2) against one LocalServer on loopback", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left")
    _save(fig, out, "client-calls.png", doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", type=Path, default=RESULTS / "scheduler.json")
    parser.add_argument("--client", type=Path, default=RESULTS / "client.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    scheduler = _load(args.scheduler)
    if scheduler is not None:
        plot_throughput(scheduler, args.out)
        plot_memory(scheduler, args.out)
        plot_lateness(scheduler, args.out)
    client = _load(args.client)
    if client is not None:
        plot_client(client, args.out)


if __name__ == "__main__":
    main()
