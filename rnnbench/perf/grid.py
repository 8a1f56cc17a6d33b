"""A grid serially and on local Ray workers, paired on this machine: wall time, CPU use, where the time goes, and
what it projects for a cluster (`python -m rnnbench.perf.grid`, `make perf-grid`; `make perf` runs it too).

    python -m rnnbench.perf.grid [--out results/perf/grid] [--workers 2] [--rounds 2] [--quick]

Each round runs the same small sine grid (3 cells x 2 seeds, fixed epochs: no early stopping, so both executors do
the same work) twice through the command a user types, `rnnbench bench`, in a fresh MLflow store each time: once with
the serial executor and once with `--executor ray --workers N`. Rounds alternate the order (S R, R S, ...), so a
drift in the machine's speed hits both sides alike; ratios are per round, their median reported. CPU utilisation is
the whole machine's, from /proc/stat sampled while the grid runs (anything else running shows in the idle sample
taken before each round). Per-run figures come from the store: a run's duration is its MLflow start to end, the
start-up is the time from the command's start until its first run starts (imports, Ray, the data, the baselines).

Writes grid.csv (section, item, variant, metric, value, unit; `record.write_csv`'s format), grid.json (environment,
the grid's command) and README.md into --out.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from rnnbench.environment import describe as describe_environment
from rnnbench.executors import local_cores
from rnnbench.perf.record import Measurements, atomic_write, write_csv

MODELS = "simple_rnn,lstm,gru"
SEEDS = "0,1"
# Sized so that a run takes several seconds of training, long against a step and short against the session.
FULL_SETS = ["task.steps=6000", "model.param_budget=12000", "train.patience=0", "train.reduce_lr_patience=0"]
FULL_EPOCHS = 6
QUICK_SETS = ["task.steps=800", "task.input_len=16", "task.horizon=2", "model.param_budget=2000",
              "train.patience=0", "train.reduce_lr_patience=0"]
QUICK_EPOCHS = 1
PROJECTED_WORKERS = (1, 2, 4, 8, 16, 32, 64)


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat's first line."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def utilisation(start: tuple[float, float], end: tuple[float, float]) -> float:
    """Share of all cores' time that was busy between two `cpu_times` readings."""
    total = end[1] - start[1]
    return (end[0] - start[0]) / total if total > 0 else math.nan


def bench_command(results: Path, epochs: int, sets: Sequence[str], executor: str, workers: int) -> list[str]:
    command = [sys.executable, "-m", "rnnbench.cli", "bench", "--task", "sine", "--models", MODELS, "--seeds", SEEDS,
               "--epochs", str(epochs), "--results-dir", str(results)]
    command += [a for s in sets for a in ("--set", s)]
    if executor == "ray":
        command += ["--executor", "ray", "--workers", str(workers)]
    return command


def run_grid(folder: Path, epochs: int, sets: Sequence[str], executor: str, workers: int) -> dict:
    """Runs one grid in its own store under `folder`; its wall time, CPU use and per-run times."""
    from rnnbench import tracking

    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "RNNBENCH_CHECKPOINT_DIR": str(folder / "checkpoints")}
    env.pop("RAY_ADDRESS", None)  # local workers: the measurement is of this machine
    idle_start = cpu_times()
    time.sleep(2.0)
    background = utilisation(idle_start, cpu_times())
    started_wall, before = time.time(), cpu_times()
    done = subprocess.run(bench_command(folder / "results", epochs, sets, executor, workers), env=env,
                          capture_output=True, text=True)
    wall, after = time.time() - started_wall, cpu_times()
    if done.returncode != 0:
        raise RuntimeError(f"the {executor} grid failed (exit {done.returncode}):\n{done.stdout[-2000:]}"
                           f"\n{done.stderr[-2000:]}")
    runs = [r for r in tracking.Tracker("sine", uri).child_runs() if r["tags"]["kind"] == "model"]
    if len(runs) != len(MODELS.split(",")) * len(SEEDS.split(",")):
        raise RuntimeError(f"the {executor} grid logged {len(runs)} model runs, expected "
                           f"{len(MODELS.split(',')) * len(SEEDS.split(','))}")
    durations = [(r["end_time"] - r["start_time"]) / 1000 for r in runs]
    first_start = min(r["start_time"] for r in runs) / 1000
    return {"wall_s": wall, "cpu_utilisation": utilisation(before, after), "background_utilisation": background,
            "startup_s": first_start - started_wall, "run_s": durations,
            "sec_per_epoch": [r["metrics"]["sec_per_epoch"] for r in runs],
            "test_rmse": {f"{r['tags']['model']}-{r['tags']['seed']}": r["metrics"]["test_rmse"] for r in runs}}


def measure(rounds: int, workers: int, epochs: int, sets: Sequence[str], echo=print) -> tuple[Measurements, dict]:
    out, raw = Measurements(), {"serial": [], "ray": []}
    with tempfile.TemporaryDirectory(prefix="rnnbench-perf-grid-") as scratch:
        for round_index in range(rounds):
            order = ("serial", "ray") if round_index % 2 == 0 else ("ray", "serial")
            for executor in order:
                result = run_grid(Path(scratch) / f"{round_index}-{executor}", epochs, sets, executor, workers)
                raw[executor].append(result)
                echo(f"perf grid: round {round_index + 1}/{rounds} {executor}: {result['wall_s']:.1f} s wall, CPU "
                     f"{100 * result['cpu_utilisation']:.0f}% busy (before: {100 * result['background_utilisation']:.0f}%)"
                     f", start-up {result['startup_s']:.1f} s, median run {statistics.median(result['run_s']):.1f} s")
    for executor, results in raw.items():
        variant = "serial" if executor == "serial" else f"ray_{workers}_workers"
        for metric, unit in (("wall_s", "s"), ("cpu_utilisation", "share"), ("background_utilisation", "share"),
                             ("startup_s", "s")):
            out.add("grid", "sine", variant, metric, statistics.median(r[metric] for r in results), unit)
        out.add("grid", "sine", variant, "run_s_median", statistics.median(d for r in results for d in r["run_s"]), "s")
        out.add("grid", "sine", variant, "run_s_sum", statistics.median(sum(r["run_s"]) for r in results), "s")
        out.add("grid", "sine", variant, "sec_per_epoch_median",
                statistics.median(s for r in results for s in r["sec_per_epoch"]), "s")
    ratios = [s["wall_s"] / r["wall_s"] for s, r in zip(raw["serial"], raw["ray"])]
    out.add("grid", "sine", "paired", "speedup_median", statistics.median(ratios), "x")
    out.add("grid", "sine", "paired", "speedup_min", min(ratios), "x")
    out.add("grid", "sine", "paired", "speedup_max", max(ratios), "x")
    drift = max(abs(r["test_rmse"][k] - s["test_rmse"][k]) / abs(s["test_rmse"][k])
                for s, r in zip(raw["serial"], raw["ray"]) for k in s["test_rmse"])
    out.add("grid", "sine", "paired", "test_rmse_max_rel_difference", drift, "share")
    return out, raw


def projection(out: Measurements, workers: int, runs: int) -> list[dict]:
    """Grid wall time and runs per hour for N one-core workers, from this machine's one-thread run time and start-up.

    Assumes as many free cores as workers, runs of the measured cost, and a store that keeps up: a grid of `runs`
    takes start-up + ceil(runs / N) one-thread runs."""
    variant = f"ray_{workers}_workers"
    run_s, startup = out.get("grid", "sine", variant, "run_s_median"), out.get("grid", "sine", variant, "startup_s")
    rows = []
    for n in PROJECTED_WORKERS:
        grid_s = startup + math.ceil(runs / n) * run_s
        rows.append({"workers": n, "grid_s": grid_s, "runs_per_hour": runs * 3600 / grid_s,
                     "steady_runs_per_hour": n * 3600 / run_s})
    return rows


def render(out: Measurements, raw: dict, environment: dict, workers: int, rounds: int, command: str) -> str:
    serial, ray = "serial", f"ray_{workers}_workers"
    get = lambda variant, metric: out.get("grid", "sine", variant, metric)  # noqa: E731
    runs = len(MODELS.split(",")) * len(SEEDS.split(","))
    lines = [
        "# rnnbench performance: one grid, serial against local Ray workers", "",
        f"Generated by `{command}`; do not edit by hand. Every figure is in [grid.csv](grid.csv).", "",
        f"The grid: `rnnbench bench --task sine --models {MODELS} --seeds {SEEDS}` ({runs} runs and 3 baselines) with "
        f"`{' '.join(raw['sets'])}`, {raw['epochs']} epochs each, run {rounds} times each way in alternating order, "
        "each time in a fresh MLflow store, through the command a user types.", "",
        "| | serial | " + f"Ray, {workers} workers |", "| --- | --- | --- |",
        f"| grid wall time (median of rounds) | {get(serial, 'wall_s'):.1f} s | {get(ray, 'wall_s'):.1f} s |",
        f"| CPU busy, whole machine | {100 * get(serial, 'cpu_utilisation'):.0f}% | "
        f"{100 * get(ray, 'cpu_utilisation'):.0f}% |",
        f"| CPU busy before the round (other load) | {100 * get(serial, 'background_utilisation'):.0f}% | "
        f"{100 * get(ray, 'background_utilisation'):.0f}% |",
        f"| start-up until the first run starts | {get(serial, 'startup_s'):.1f} s | {get(ray, 'startup_s'):.1f} s |",
        f"| one run, median | {get(serial, 'run_s_median'):.1f} s | {get(ray, 'run_s_median'):.1f} s |",
        f"| all runs' durations added up | {get(serial, 'run_s_sum'):.1f} s | {get(ray, 'run_s_sum'):.1f} s |",
        f"| seconds per epoch, median | {get(serial, 'sec_per_epoch_median'):.2f} | "
        f"{get(ray, 'sec_per_epoch_median'):.2f} |", "",
        f"**Speed-up of the grid: {get('paired', 'speedup_median'):.2f} x** (median of the per-round ratios serial / "
        f"Ray; rounds {get('paired', 'speedup_min'):.2f}-{get('paired', 'speedup_max'):.2f}): "
        + ("Ray finished the grid sooner." if get('paired', 'speedup_median') > 1 else
           "Ray finished the grid later: its start-up and the slower one-thread runs outweighed running "
           f"{workers} at once on a grid this short.") + " The runs' test RMSE "
        f"differ by at most {100 * get('paired', 'test_rmse_max_rel_difference'):.4f}% between the two executors.", "",
        "## Where the speed-up comes from, and where it stops", "",
        f"- Serially one run at a time uses TensorFlow's threads on all {environment.get('cpu_count', '?')} cores; "
        f"these small models cannot keep them busy (the serial grid kept {100 * get(serial, 'cpu_utilisation'):.0f}% "
        f"of the machine busy). {workers} workers with one thread each (`threads = cores / workers`) run {workers} "
        f"models side by side at {100 * get(ray, 'cpu_utilisation'):.0f}%: each run is slower "
        f"({get(ray, 'run_s_median'):.1f} s against {get(serial, 'run_s_median'):.1f} s) but {workers} progress at "
        "once.",
        f"- The fixed cost grows: Ray's start and the workers' imports of TensorFlow put the first run "
        f"{get(ray, 'startup_s'):.1f} s after the command's start, against {get(serial, 'startup_s'):.1f} s serially. "
        "On a grid this short that start-up is a large part of the wall time; it is paid once per command.",
        f"- It stops at the cores: more workers than cores only share them (threads per worker cannot go below one), "
        f"and with {runs} runs on {workers} workers the last round of runs may leave a worker idle.", "",
        "## Projection for a cluster", "",
        f"From the one-thread run time measured here ({get(ray, 'run_s_median'):.1f} s per run) and the Ray start-up "
        f"({get(ray, 'startup_s'):.1f} s), for N one-core workers on machines like this one, a store that keeps up "
        "(an `mlflow server`; SQLite only on one machine) and runs of this size: a grid of R runs takes start-up + "
        "ceil(R / N) runs. Real grids' runs are longer (results/<task>/README.md gives sec/epoch per model), which "
        "makes the start-up matter less and the steady rate the better guide.", "",
        "| workers | 36-run grid (12 models x 3 seeds) | runs per hour for that grid | steady runs per hour |",
        "| --- | --- | --- | --- |",
    ]
    for row in projection(out, workers, 36):
        lines.append(f"| {row['workers']} | {row['grid_s']:.0f} s | {row['runs_per_hour']:.0f} | "
                     f"{row['steady_runs_per_hour']:.0f} |")
    lines += ["", "Not measured here: a multi-machine cluster (network, the server store's write rate), GPUs.", "",
              "## Environment", "", "| | |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in environment.items()]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnbench.perf.grid", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default results/perf/grid; --quick: "
                                                    "results/perf_quick/grid)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="paired rounds, each serial and Ray once (default 2)")
    parser.add_argument("--quick", action="store_true", help="a tiny grid of one epoch: checks that it all runs")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.rounds < 1:
        print("python -m rnnbench.perf.grid: --workers and --rounds must be >= 1", file=sys.stderr)
        return 2
    epochs, sets = (QUICK_EPOCHS, QUICK_SETS) if args.quick else (FULL_EPOCHS, FULL_SETS)
    out_dir = Path(args.out or ("results/perf_quick/grid" if args.quick else "results/perf/grid"))
    command = " ".join(["python -m rnnbench.perf.grid", *(argv if argv is not None else sys.argv[1:])])
    environment = describe_environment()
    environment["cores this process may use"] = local_cores()
    environment["load average (1/5/15 min) at start"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    started = time.perf_counter()
    out, raw = measure(args.rounds, args.workers, epochs, sets)
    environment["load average (1/5/15 min) at end"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    environment["duration (s)"] = f"{time.perf_counter() - started:.0f}"
    raw.update({"epochs": epochs, "sets": list(sets)})
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out.rows, out_dir / "grid.csv")
    atomic_write(out_dir / "grid.json", lambda p: p.write_text(
        json.dumps({"environment": environment, "command": command, "rounds": raw}, indent=2, default=str) + "\n"))
    readme = render(out, raw, environment, args.workers, args.rounds, command)
    atomic_write(out_dir / "README.md", lambda p: p.write_text(readme))
    print(f"perf grid: speed-up {out.get('grid', 'sine', 'paired', 'speedup_median'):.2f} x; wrote {out_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
