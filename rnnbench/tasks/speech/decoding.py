"""Decoding a CTC model's output into transcripts on fixed batches, scoring them, and the callback that adds
validation error rates to each epoch's logs (what picks the best epoch by default)."""
from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from rnnbench import ctc
from rnnbench.tasks.speech.batching import sorted_batches
from rnnbench.tasks.speech.data import Utterance
from rnnbench.tasks.speech.metrics import error_rates


class Decoder:
    """Runs a model over fixed, length-sorted batches and turns its logits into transcripts."""

    def __init__(self, utterances: Sequence[Utterance], vocabulary: ctc.Vocabulary, batch_size: int,
                 bounds: Sequence[int], beam_width: int):
        self.utterances = list(utterances)
        self.vocabulary = vocabulary
        self.batches = sorted_batches(utterances, batch_size, bounds, vocabulary)
        self.beam_width = beam_width

    def transcribe(self, model, beam: bool = False) -> dict:
        """{"ids", "references", "greedy"[, "beam"]}, in the batches' (length-sorted) order."""
        out = {"ids": [], "references": [], "greedy": [], "beam": []}
        for chunk, x, _ in self.batches:
            logits = np.asarray(model.predict_on_batch(x))
            out["ids"] += [u.id for u in chunk]
            out["references"] += [u.transcript for u in chunk]
            out["greedy"] += [self.vocabulary.decode(s) for s in ctc.decode_logits(logits, "greedy")]
            if beam:
                out["beam"] += [self.vocabulary.decode(s)
                                for s in ctc.decode_logits(logits, "beam_search", beam_width=self.beam_width)]
        return out

    def scores(self, model, beam: bool = False) -> dict:
        decoded = self.transcribe(model, beam)
        result = error_rates(decoded["references"], decoded["greedy"])
        if beam:
            result.update(error_rates(decoded["references"], decoded["beam"], prefix="beam_"))
        return result


class ValidationErrorRates(keras.callbacks.Callback):
    """Adds `val_cer` and `val_wer` (greedy decoding of the validation utterances) to each epoch's logs."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self.decoder = decoder

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in self.decoder.scores(self.model).items()})
