"""The speech task's run artifacts: every test utterance decoded (greedy and beam search) in a CSV, and a plot of
one median-length test utterance's features under the model's per-frame posteriors."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from rnnbench import ctc
from rnnbench.tasks.speech.data import Utterance
from rnnbench.tasks.speech.decoding import Decoder

EXAMPLES_PLOTTED = 1


def write_artifacts(out_dir: Path, model, decoder: Decoder, test: Sequence[Utterance]) -> None:
    _write_examples(out_dir, decoder.transcribe(model, beam=True), decoder.vocabulary)
    for utterance in sorted(test, key=lambda u: len(u.features))[len(test) // 2:][:EXAMPLES_PLOTTED]:
        _plot_example(out_dir, model, utterance, decoder.vocabulary)


def _write_examples(out_dir: Path, decoded: dict, vocabulary: ctc.Vocabulary) -> None:
    with open(out_dir / "decoded_test_examples.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "reference", "greedy", "beam_search", "greedy_cer", "beam_cer"])
        for i, ref, greedy, beam in zip(decoded["ids"], decoded["references"], decoded["greedy"], decoded["beam"]):
            writer.writerow([i, ref, greedy, beam, f"{ctc.utterance_cer(ref, greedy):.4f}",
                             f"{ctc.utterance_cer(ref, beam):.4f}"])


def _plot_example(out_dir: Path, model, utterance: Utterance, vocabulary: ctc.Vocabulary) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = utterance.features[None]
    logits = np.asarray(model.predict_on_batch(x))[0]
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    hypothesis = vocabulary.decode(ctc.decode_logits(logits[None], "greedy")[0])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=False)
    top.imshow(utterance.features.T, aspect="auto", origin="lower", cmap="viridis")
    top.set_ylabel("feature")
    top.set_title(f"{utterance.id}: reference {utterance.transcript!r}", fontsize=9)
    bottom.imshow(probabilities.T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1)
    labels = ["<blank>"] + list(vocabulary.symbols)
    bottom.set_yticks(range(len(labels)))
    bottom.set_yticklabels([repr(s) if s == " " else s for s in labels], fontsize=6)
    bottom.set_xlabel("output frame")
    bottom.set_title(f"{model.name}: posteriors, greedy {hypothesis!r}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "test_example_posteriors.png", dpi=100)
    plt.close(fig)
