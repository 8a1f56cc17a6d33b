"""Reading attention weights back from a built model, for tasks and the runner alike (neither needs the models).

A model exposes its attention by naming the layer `ATTENTION_LAYER_NAME`; that layer returns (output, weights) and
says so with the class attribute `returns_attention_weights = True` (rnnbench.models.layers sets it).
"""
from __future__ import annotations

from typing import Optional

import keras
import numpy as np

ATTENTION_LAYER_NAME = "attention"


def attention_weights(model: keras.Model, x) -> Optional[np.ndarray]:
    """Attention weights of an attention model for inputs `x`, or None for a model without attention.

    Pooling attention gives `(batch, time)`; self-attention gives `(batch, heads, time, time)`.
    """
    try:
        layer = model.get_layer(ATTENTION_LAYER_NAME)
    except ValueError:
        return None
    if not getattr(layer, "returns_attention_weights", False):
        return None
    probe = keras.Model(model.input, layer.output[1])
    return np.asarray(probe(x, training=False))
