"""char_lm's metrics in nats, bits and perplexity per character, as Keras metrics and from a mean in nats.

The Keras metrics are registered serializable under "rnnbench.char_lm", so a logged model loads with them.
"""
from __future__ import annotations

import math

import keras


class _CharCrossEntropy(keras.metrics.Mean):
    """Mean next-character cross-entropy (nats) over every scored character, from logits."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        nats = keras.ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        return super().update_state(nats, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="rnnbench.char_lm")
class BitsPerCharacter(_CharCrossEntropy):
    def __init__(self, name: str = "bpc", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return super().result() / math.log(2.0)


@keras.saving.register_keras_serializable(package="rnnbench.char_lm")
class Perplexity(_CharCrossEntropy):
    def __init__(self, name: str = "perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return keras.ops.exp(super().result())


def scores_from_nats(nats_per_char: float) -> dict[str, float]:
    """The task's three test metrics from the mean cross-entropy in nats per character."""
    return {"loss": nats_per_char, "bpc": nats_per_char / math.log(2.0), "perplexity": math.exp(nats_per_char)}
