"""The g2p run's test scores and files: decoding the test words (the evaluate hook), per-word predictions,
attention alignment plots of a few test words, and `vocabulary.json`, with which `predict` reads new words."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnbench.spec import SEQ2SEQ_ALIGNMENT_LAYER, SEQ2SEQ_START
from rnnbench.tasks.g2p.data import Vocabulary
from rnnbench.tasks.g2p.decoding import decode
from rnnbench.tasks.g2p.metrics import closest, error_rates

VOCABULARY_ARTIFACT = "task/vocabulary.json"  # the runner stores the artifacts hook's files under task/
VOCABULARY_FORMAT = "rnnbench.g2p.vocabulary/1"


def save_vocabulary(path: Path, vocabulary: Vocabulary, settings: dict) -> None:
    payload = {"format": VOCABULARY_FORMAT, "letters": list(vocabulary.letters), "phonemes": list(vocabulary.phonemes),
               **settings}
    Path(path).write_text(json.dumps(payload, indent=1), encoding="utf-8")


class ScoredTestWords:
    """Decodes the test words once per model (greedy, and beam search when `beam_width` > 1) for both hooks."""

    def __init__(self, words, references, vocabulary: Vocabulary, max_length: int, beam_width: int,
                 plot_words: int, seed: int):
        self.words, self.references, self.vocabulary = list(words), list(references), vocabulary
        self.max_length, self.beam_width = max_length, beam_width
        self.source = vocabulary.encode_words(self.words)
        # A seeded handful of mid-length words: long enough to show an alignment, short enough to read it.
        middle = [i for i, w in enumerate(self.words) if 5 <= len(w) <= 10] or list(range(len(self.words)))
        rng = np.random.default_rng(seed)
        self.plotted = sorted(rng.choice(middle, size=min(plot_words, len(middle)), replace=False).tolist())
        self._decoded: dict = {}

    def hypotheses(self, model) -> dict:
        """{"greedy": [phonemes per word], "beam": ...} for `model` (remembered for the artifacts hook)."""
        key = id(model)
        if key not in self._decoded:
            self._decoded.clear()
            found = {"greedy": decode(model, self.source, self.max_length, 1)}
            if self.beam_width > 1:
                found["beam"] = decode(model, self.source, self.max_length, self.beam_width)
            self._decoded[key] = {kind: [self.vocabulary.decode_phonemes(ids) for ids in rows]
                                  for kind, rows in found.items()}
        return self._decoded[key]

    def evaluate(self, model) -> dict:
        """per and wer of the headline decoding (beam search, or greedy at beam_width 1), plus greedy_per and
        greedy_wer."""
        found = self.hypotheses(model)
        greedy = error_rates(self.references, found["greedy"], prefix="greedy_")
        best = error_rates(self.references, found.get("beam", found["greedy"]))
        return {**best, **greedy}

    def artifacts(self, model, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        found = self.hypotheses(model)
        kind = "beam" if "beam" in found else "greedy"
        lines = ["word\treferences\tgreedy\tbeam\tcorrect"]
        for i, word in enumerate(self.words):
            hyp = found[kind][i]
            lines.append("\t".join([word, " | ".join(" ".join(r) for r in self.references[i]),
                                    " ".join(found["greedy"][i]), " ".join(found.get("beam", found["greedy"])[i]),
                                    str(int(closest(self.references[i], hyp)[0] == 0))]))
        (out_dir / "test_predictions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.plot_alignments(model, [found[kind][i] for i in self.plotted], out_dir)

    def plot_alignments(self, model, hypotheses: list, out_dir: Path) -> None:
        """One heat map per plotted word: letters (columns) against the phonemes the model wrote (rows), read
        back from the attention layer with the model's own output as decoder input. Models without attention
        write a note instead."""
        import keras

        try:
            layer = model.get_layer(SEQ2SEQ_ALIGNMENT_LAYER)
        except ValueError:
            (out_dir / "alignments.txt").write_text(f"{model.name} has no attention: no alignments to plot\n")
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        probe = keras.Model(model.inputs, layer.output[1])
        ids = self.vocabulary.phoneme_ids
        for i, hyp in zip(self.plotted, hypotheses):
            word = self.words[i]
            decoder_in = np.array([[SEQ2SEQ_START] + [ids[p] for p in hyp]], dtype=np.int32)
            source = self.vocabulary.encode_words([word])
            weights = np.asarray(probe([source, decoder_in], training=False))[0]  # (phonemes + 1, letters)
            rows = [*hyp, "</s>"]
            fig, ax = plt.subplots(figsize=(0.45 * len(word) + 2, 0.35 * len(rows) + 1.5))
            ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(word)), list(word))
            ax.set_yticks(range(len(rows)), rows)
            ax.set_xlabel("letter")
            ax.set_ylabel("phoneme written")
            ax.set_title(f"{model.name}: {word}", fontsize=9)
            fig.tight_layout()
            fig.savefig(out_dir / f"alignment_{i:05d}_{''.join(c for c in word if c.isalnum())}.png", dpi=100)
            plt.close(fig)
