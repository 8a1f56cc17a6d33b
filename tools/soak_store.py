"""Soak test of the store's safety under kills (not part of `make test`; takes about 10-20 minutes on 2 cores).

    .venv/bin/python tools/soak_store.py [--kills 20] [--folder /tmp/soak] [--seed 0]

A tiny sine grid (lstm, gru x 10 seeds; 2 epochs) is started with `--resume` and SIGKILLed at a random moment,
again and again; the first kills land in a new store's schema creation (a fresh store each time, killed 0-3 s after
its staging file appears). Then the grid runs to the end, and two identical grids of other seeds run at once. It prints, for both grids: finished runs per (model,
seed), duplicated finished runs, runs left RUNNING after the next command, and stores that could not be opened.
Goal: 1 finished run per (model, seed), 0 duplicates, 0 left RUNNING, 0 broken stores.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

TINY = ["task.steps=600", "task.input_len=16", "task.horizon=2", "model.units=4"]
GRID = ",".join(str(seed) for seed in range(10))


def command(results: Path, seeds: str) -> list[str]:
    return [sys.executable, "-m", "rnnbench.cli", "bench", "--task", "sine", "--models", "lstm,gru", "--seeds", seeds,
            "--epochs", "2", "--resume", "--results-dir", str(results)] + [a for s in TINY for a in ("--set", s)]


def start(folder: Path, store: Path, seeds: str, name: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
           "RNNBENCH_CHECKPOINT_DIR": str(folder / "checkpoints")}
    log = open(folder / f"{name}.log", "w")
    return subprocess.Popen(command(folder / "results", seeds), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def store_state(store: Path) -> tuple[bool, dict]:
    """(opened, {'finished': Counter of (model, seed), 'running': n}) after opening it as the next command would."""
    from rnnbench import tracking

    try:
        tracker = tracking.Tracker("sine", f"sqlite:///{store}")
    except Exception as error:  # what the soak counts as a broken store
        print(f"  store {store.name} cannot be opened: {type(error).__name__}: {error}")
        return False, {}
    runs = tracker.child_runs()
    finished = collections.Counter((r["tags"].get("model"), r["tags"].get("seed")) for r in runs
                                   if r["status"] == "FINISHED" and r["tags"].get("kind") == "model")
    parents = tracker.client.search_runs([tracker.experiment_id], "attributes.status = 'RUNNING'")
    return True, {"finished": finished, "running": len(parents)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--creation-kills", type=int, default=5, help="of the kills, how many hit a new store")
    parser.add_argument("--folder", default="/tmp/rnnbench-soak")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    store, broken, started = folder / "mlflow.db", 0, time.monotonic()
    for existing in folder.glob("*.db"):
        existing.unlink()

    for kill_number in range(1, args.kills + 1):
        creation = kill_number <= args.creation_kills
        target = folder / f"fresh{kill_number}.db" if creation else store
        process, began = start(folder, target, GRID, f"kill{kill_number}"), time.monotonic()
        if creation:  # wait for the schema creation to begin, then kill inside it
            while not list(folder.glob(f".{target.name}.creating-*")) and time.monotonic() - began < 90:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 3.0))
        else:
            time.sleep(rng.uniform(2.0, 40.0))
        during = "during schema creation" if list(folder.glob(f".{target.name}.creating-*")) else ""
        finished_before = process.poll() is not None
        kill(process)
        opened, _ = store_state(target)
        broken += not opened
        print(f"kill {kill_number:2d} at {time.monotonic() - began:5.1f} s into "
              f"{'a new store' if creation else 'the grid'} {during}"
              f"{' (it had already exited)' if finished_before else ''}: store {'opens' if opened else 'BROKEN'}",
              flush=True)

    final = start(folder, store, GRID, "final")
    final.wait()
    pair = [start(folder, store, "10,11,12", f"concurrent{i}") for i in range(2)]
    codes = [p.wait() for p in pair]
    print(f"grid to the end: exit {final.returncode}; two identical grids at once: exits {codes}")

    opened, state = store_state(store)
    broken += not opened
    print(f"\nsoak: {args.kills} SIGKILLs ({args.creation_kills} during store creation), then the grid to the end, "
          f"then two identical grids at once; {time.monotonic() - started:.0f} s")
    if opened:
        for seeds in GRID.split(","), ("10", "11", "12"):
            for model in ("lstm", "gru"):
                for seed in seeds:
                    print(f"  {model} seed {seed}: {state['finished'][(model, seed)]} finished run(s)")
        duplicates = sum(count - 1 for count in state["finished"].values() if count > 1)
        print(f"duplicated finished runs: {duplicates}")
        print(f"runs left RUNNING: {state['running']}")
    print(f"stores broken: {broken}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
