"""Copy memory: reproduce ten symbols after a delay of T steps, a long-range memory probe with one label per step.

Hochreiter & Schmidhuber (1997), in the form of Arjovsky, Shah & Bengio (2016). Token ids: 0 blank, 1..8 the
symbols, 9 the delimiter. A sequence of `length` + 20 steps is 10 symbols drawn uniformly from the 8, then T - 1
blanks, the delimiter, and 10 blanks. The target at each step is blank for the first T + 10 steps and then the 10
symbols in order: after the delimiter the model must play back what it saw T + 10 steps earlier. A causal model
(head `causal_steps`) predicts each step from the steps up to it; the classes are blank and the 8 symbols (9).

Metrics: `loss` is the mean cross-entropy per step in nats over all T + 20 steps (the primary metric, lower is
better); `recall_accuracy` is the accuracy on the 10 steps that reproduce the symbols, `accuracy` over every step,
`loss_over_memoryless` the loss divided by the memoryless baseline's, and `solved` is 1.0 when `recall_accuracy`
reaches `solved_recall` (0.99). The memoryless baseline predicts blank with certainty until the delimiter and then
each of the 8 symbols with probability 1/8: cross-entropy 10 ln 8 / (T + 20) and recall accuracy 1/8, what a model
that remembers nothing can reach (Arjovsky et al. 2016).

Splits are drawn from independent streams of the data seed and share no sequence (`adding.distinct_splits`).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import keras
import numpy as np

from rnnbench.errors import UserError
from rnnbench.options import as_dict, option
from rnnbench.pipeline import array_dataset, run_shuffle_seed
from rnnbench.registry import register_task
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks.adding import SPLITS, distinct_splits, splits_digest

BLANK, DELIMITER = 0, 9
SYMBOLS, ALPHABET = 10, 8  # 10 symbols to copy, each one of 8 (ids 1..8)
VOCAB_SIZE, NUM_CLASSES = ALPHABET + 2, ALPHABET + 1  # inputs add the delimiter; targets are blank or a symbol


def memoryless_loss(length: int) -> float:
    """Cross-entropy per step of the predictor that is certain of blank until the delimiter, then uniform."""
    return SYMBOLS * math.log(ALPHABET) / (length + 2 * SYMBOLS)


def make_sequences(rng: np.random.Generator, count: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), both (count, length + 20) int32: inputs as laid out in the module docstring, and the targets."""
    symbols = rng.integers(1, ALPHABET + 1, size=(count, SYMBOLS), dtype=np.int32)
    steps = length + 2 * SYMBOLS
    x = np.full((count, steps), BLANK, dtype=np.int32)
    x[:, :SYMBOLS] = symbols
    x[:, length + SYMBOLS - 1] = DELIMITER
    y = np.full((count, steps), BLANK, dtype=np.int32)
    y[:, length + SYMBOLS:] = symbols
    return x, y


def step_metrics(y_true: np.ndarray, logits: np.ndarray, length: int, solved_recall: float) -> dict:
    """Test metrics from per-step logits (count, length + 20, 9), accumulated in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    loss = float(-np.take_along_axis(log_probs, y_true[..., None].astype(np.int64), axis=-1).mean())
    correct = logits.argmax(axis=-1) == y_true
    recall = float(correct[:, -SYMBOLS:].mean())
    return {"loss": loss, "accuracy": float(correct.mean()), "recall_accuracy": recall,
            "loss_over_memoryless": loss / memoryless_loss(length), "solved": float(recall >= solved_recall)}


@dataclasses.dataclass(frozen=True)
class CopyOptions:
    seed: int = option(0, "draws every sequence (the data seed, not the model seed)", minimum=0)
    length: int = option(100, "T: the delay; a sequence has T + 20 steps (10 symbols, T - 1 blanks, the delimiter, "
                              "10 blanks)", minimum=1)
    train_size: int = option(10000, "training sequences", minimum=1)
    val_size: int = option(1000, "validation sequences", minimum=1)
    test_size: int = option(1000, "test sequences", minimum=1)
    solved_recall: float = option(0.99, "recall accuracy at or above which the task counts as solved", minimum=0,
                                  maximum=1, exclusive=True)

    def __post_init__(self):
        total, possible = self.train_size + self.val_size + self.test_size, ALPHABET ** SYMBOLS
        if total > possible // 2:
            raise UserError(f"task.train_size + task.val_size + task.test_size = {total} sequences, but only "
                            f"{possible} distinct ones exist and the splits share none; ask for at most "
                            f"{possible // 2} in all")
        if self.solved_recall <= 1 / ALPHABET:
            raise UserError(f"task.solved_recall={self.solved_recall} is not above chance (1/{ALPHABET}): a model "
                            "that remembers nothing would count as solving the task; use a value such as 0.99")


def predict_from_run(run_id: str, inputs: list[str]) -> list[str]:
    """What the run plays back after its delay for 10 symbols a user gives (digits 1-8, e.g. `1234567812`)."""
    from rnnbench import tracking

    given = "".join(inputs).replace(",", "").replace(" ", "")
    if len(given) != SYMBOLS or not all(c in "12345678" for c in given):
        raise UserError(f"give the {SYMBOLS} symbols to copy as digits 1-8, e.g. 1234567812 (got {given!r})")
    model = tracking.load_model(run_id)
    steps = int(model.inputs[0].shape[1])
    length = steps - 2 * SYMBOLS
    x = np.full((1, steps), BLANK, dtype=np.int32)
    x[0, :SYMBOLS] = [int(c) for c in given]
    x[0, length + SYMBOLS - 1] = DELIMITER
    recalled = np.asarray(model.predict_on_batch(x))[0, length + SYMBOLS:].argmax(-1)
    played = "".join(str(int(c)) if c != BLANK else "_" for c in recalled)
    right = sum(a == b for a, b in zip(played, given))
    return [f"given:    {given}", f"recalled: {played} after a delay of T = {length} ({right}/{SYMBOLS} right)"]


@register_task("copy", options=CopyOptions, predict=predict_from_run)
def load(options: CopyOptions, *, batch_size: int = 50) -> TaskSpec:
    """Copy memory: play back 10 symbols after a delay of T steps (a long-range memory probe)."""
    length, seed, solved_recall = options.length, options.seed, options.solved_recall
    sizes = {"train": options.train_size, "val": options.val_size, "test": options.test_size}
    splits, repeats = distinct_splits(lambda rng, count: make_sequences(rng, count, length), sizes, seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (splits[name] for name in SPLITS)
    steps = length + 2 * SYMBOLS
    baselines = {"memoryless": {
        "loss": memoryless_loss(length), "recall_accuracy": 1 / ALPHABET,
        # Blank is right at every step before the recall; a uniform guess is right 1 time in 8 during it.
        "accuracy": (steps - SYMBOLS + SYMBOLS / ALPHABET) / steps, "loss_over_memoryless": 1.0, "solved": 0.0}}

    def evaluate(model) -> dict:
        return step_metrics(y_test, model.predict(x_test, batch_size=batch_size, verbose=0), length, solved_recall)

    def artifacts(model, out_dir: Path) -> None:
        predicted = np.asarray(model.predict(x_test[:8], verbose=0)).argmax(axis=-1)[:, -SYMBOLS:]
        lines = [f"{model.name}: copy, T = {length}; symbols to copy, then what the model played back"]
        for expected, played in zip(y_test[:8, -SYMBOLS:], predicted):
            marks = "".join(" " if a == b else "^" for a, b in zip(expected, played))
            lines += [f"target    {' '.join(map(str, expected))}", f"predicted {' '.join(map(str, played))}",
                      f"          {' '.join(marks)}", ""]
        (out_dir / "recall_examples.txt").write_text("\n".join(lines))

    return TaskSpec(
        name="copy",
        inputs=InputSpec("tokens", vocab_size=VOCAB_SIZE, length=steps, masked=False),
        outputs=OutputSpec("causal_steps", num_classes=NUM_CLASSES),
        train=array_dataset(x_train, y_train, batch_size, shuffle_seed=seed),
        train_for=lambda run_seed: array_dataset(x_train, y_train, batch_size,
                                                 shuffle_seed=run_shuffle_seed(seed, run_seed)),
        val=array_dataset(x_val, y_val, batch_size),
        test=array_dataset(x_test, y_test, batch_size),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=(keras.metrics.SparseCategoricalAccuracy(name="accuracy"),),
        primary_metric="loss",
        higher_is_better=False,
        baselines=baselines,
        dataset={"name": "synthetic_copy", "sha256": splits_digest(splits), "length": length, "steps": steps,
                 "train_sequences": len(x_train), "val_sequences": len(x_val), "test_sequences": len(x_test),
                 "repeats_redrawn": repeats},
        options=as_dict(options),
        evaluate=evaluate,
        artifacts=artifacts,
        notes={"memoryless_loss": memoryless_loss(length)},
    )
