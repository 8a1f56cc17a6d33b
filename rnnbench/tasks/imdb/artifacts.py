"""What IMDB adds to a finished run: test precision and recall, and the files of the `artifacts` hook.

Files: confusion matrix (CSV and PNG), the most confidently misclassified reviews, per-review test predictions and,
for attention models, attention over the words of a few short reviews.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rnnbench import text as textlib

CLASS_NAMES = ("negative", "positive")


def positive_probabilities(model, ds) -> np.ndarray:
    """p(positive) of every review in `ds` (batches of token ids, or one padded array of them)."""
    logits = np.asarray(model.predict(ds, verbose=0), dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    return probabilities[:, 1] / probabilities.sum(axis=1)


def _write_confusion_matrix(labels: np.ndarray, predicted: np.ndarray, out_dir: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.zeros((2, 2), dtype=int)
    np.add.at(counts, (labels, predicted), 1)
    rows = ["true\\predicted," + ",".join(CLASS_NAMES)]
    rows += [f"{CLASS_NAMES[i]}," + ",".join(str(c) for c in counts[i]) for i in range(2)]
    (out_dir / "confusion_matrix.csv").write_text("\n".join(rows) + "\n")
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, f"{count}\n{count / max(1, counts[i].sum()):.1%}", ha="center", va="center",
                color="white" if count > counts.max() / 2 else "black")
    ax.set_xticks([0, 1], CLASS_NAMES)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion_matrix.png", dpi=100)
    plt.close(fig)


def _write_misclassified(texts, labels, probabilities, out_dir: Path, per_class: int = 5) -> None:
    """The reviews the model was most sure about and got wrong, per true class."""
    lines = [f"The {per_class} most confident mistakes per true class on the test split (text after <br /> removal; "
             "the model saw at most task.max_length of its tokens).", ""]
    for label in (0, 1):
        wrong = np.flatnonzero((labels == label) & ((probabilities > 0.5) != bool(label)))
        confidence = np.abs(probabilities[wrong] - label)  # distance from the right answer
        for index in wrong[np.argsort(-confidence, kind="stable")][:per_class]:
            lines += [f"[test #{index}] true {CLASS_NAMES[label]}, p(positive) = {probabilities[index]:.3f}",
                      texts[index][:2000] + (" [...]" if len(texts[index]) > 2000 else ""), ""]
    (out_dir / "misclassified.txt").write_text("\n".join(lines), encoding="utf-8")


def _write_attention_words(model, sequences, vocabulary, rng, out_dir: Path, count: int = 4) -> None:
    """Attention over the words of a few short test reviews, with the words as tick labels."""
    from rnnbench.attention import attention_weights

    lengths = np.asarray([len(s) for s in sequences])
    short = np.flatnonzero((lengths >= 10) & (lengths <= 60))
    if len(short) == 0:
        short = np.argsort(lengths, kind="stable")
    picks = rng.permutation(short)[:count]
    width = int(lengths[picks].max())
    batch = np.zeros((len(picks), width), dtype=np.int32)
    for row, index in enumerate(picks):
        batch[row, : lengths[index]] = sequences[index]
    weights = attention_weights(model, batch)
    if weights is None:
        return
    weights = np.asarray(weights)
    if weights.ndim == 4:  # self-attention (batch, heads, query, key): attention each word receives, averaged
        weights = weights.mean(axis=(1, 2))
    weights = weights.reshape(len(picks), -1)[:, :width]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(picks), 1, figsize=(max(8, width * 0.22), 1.6 * len(picks)), squeeze=False)
    table = ["review,position,token,weight"]
    for ax, row, index in zip(axes[:, 0], weights, picks):
        n = int(lengths[index])
        words = [vocabulary[t] for t in sequences[index]]
        ax.imshow(row[None, :n], aspect="auto", cmap="magma")
        ax.set_xticks(range(n), words, rotation=90, fontsize=7)
        ax.set_yticks([])
        ax.set_ylabel(f"#{index}", rotation=0, ha="right", va="center", fontsize=8)
        table += [f"{index},{i},{w},{row[i]:.6f}" for i, w in enumerate(words)]
    fig.suptitle(f"{model.name}: attention over words of short test reviews")
    fig.tight_layout()
    fig.savefig(out_dir / "attention_words.png", dpi=100)
    plt.close(fig)
    (out_dir / "attention_words.csv").write_text("\n".join(table) + "\n", encoding="utf-8")


class ScoredTestSplit:
    """The task's `evaluate` and `artifacts` hooks over one test split.

    test_ds yields the reviews in `test_order` (length-sorted batches); texts, labels and token ids are in the
    split's original order, which is the order of every file written.
    """

    def __init__(self, test_ds, test_order, texts, labels, token_ids, vocabulary, seed: int):
        self.test_ds, self.test_order = test_ds, test_order
        self.texts, self.labels, self.token_ids = texts, labels, token_ids
        self.vocabulary, self.seed = vocabulary, seed
        # The runner calls `evaluate` and then `artifacts` with the same weights; scoring 25,000 reviews once for
        # both saves a pass as long as the test evaluation itself.
        self._cached: dict = {}

    def probabilities(self, model) -> np.ndarray:
        """p(positive) of every test review, in the original order of the test split."""
        key = (id(model), hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest())
        if self._cached.get("key") != key:
            probabilities = np.empty(len(self.labels))
            probabilities[self.test_order] = positive_probabilities(model, self.test_ds)
            self._cached.update(key=key, probabilities=probabilities)
        return self._cached["probabilities"]

    def evaluate(self, model) -> dict:
        metrics = textlib.binary_metrics(self.labels, self.probabilities(model), 0.5)
        return {"precision": metrics["precision"], "recall": metrics["recall"]}

    def artifacts(self, model, out_dir: Path) -> None:
        probabilities = self.probabilities(model)
        predicted = (probabilities > 0.5).astype(int)
        _write_confusion_matrix(self.labels, predicted, out_dir, f"{model.name}: test")
        _write_misclassified(self.texts, self.labels, probabilities, out_dir)
        rows = ["test_index,label,p_positive"] + [f"{i},{y},{p:.6f}" for i, (y, p) in
                                                  enumerate(zip(self.labels, probabilities))]
        (out_dir / "test_predictions.csv").write_text("\n".join(rows) + "\n")
        _write_attention_words(model, self.token_ids, self.vocabulary, np.random.default_rng([self.seed, 5]),
                               out_dir)
