"""Per-epoch checkpoints of a run, so `--resume` continues an interrupted run from its last finished epoch."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

if TYPE_CHECKING:
    from rnnbench.callbacks import BestWeights, EpochTimer


def checkpoint_dir() -> Path:
    return Path(os.environ.get("RNNBENCH_CHECKPOINT_DIR", "checkpoints"))


def history_rows(history: dict) -> list[dict]:
    length = max((len(v) for v in history.values()), default=0)
    return [{k: v[i] for k, v in history.items() if i < len(v)} for i in range(length)]


class EpochCheckpoint:
    """The last finished epoch of one run on disk: model with optimizer state, best weights, history so far."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def exists(self) -> bool:
        return (self.folder / "state.json").is_file()

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def callback(self, best: "BestWeights", timer: "EpochTimer") -> keras.callbacks.Callback:
        checkpoint = self

        class _Save(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.history = json.loads((checkpoint.folder / "state.json").read_text())["history"] \
                    if checkpoint.exists() else {}

            def on_epoch_end(self, epoch, logs=None):
                for key, value in (logs or {}).items():
                    self.history.setdefault(key, []).append(float(value))
                checkpoint.save(self.model, epoch, best, timer, self.history)

        return _Save()

    def save(self, model, epoch: int, best: "BestWeights", timer: "EpochTimer", history: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        model.save(self.folder / "last.tmp.keras")
        os.replace(self.folder / "last.tmp.keras", self.folder / "last.keras")
        if best.best_weights is not None and best.best_epoch == epoch:
            np.savez(self.folder / "best.tmp.npz", *best.best_weights)
            os.replace(self.folder / "best.tmp.npz", self.folder / "best.npz")
        state = {"epoch": epoch, "best": best.best, "best_epoch": best.best_epoch, "best_logs": best.best_logs,
                 "stopped": best.stopped, "time_capped": best.time_capped,
                 "durations": timer.durations, "history": history}
        (self.folder / "state.tmp.json").write_text(json.dumps(state, default=float))
        os.replace(self.folder / "state.tmp.json", self.folder / "state.json")

    def restore(self, best: "BestWeights", timer: "EpochTimer"):
        """(model, first epoch still to run, history of the finished epochs); fills `best` and `timer`."""
        state = json.loads((self.folder / "state.json").read_text())
        model = keras.models.load_model(self.folder / "last.keras")
        best.best, best.best_epoch, best.best_logs = state["best"], state["best_epoch"], state["best_logs"]
        if (self.folder / "best.npz").is_file():
            with np.load(self.folder / "best.npz") as saved:
                best.best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        best.stopped, best.time_capped = state.get("stopped", False), state.get("time_capped", False)
        timer.restored = list(state["durations"])
        timer.durations = list(timer.restored)
        return model, state["epoch"] + 1, state["history"]
