"""Carried recurrent state of any Keras model: find the layers that carry state from one batch to the next, zero what
they carry, and make a batch-1 copy for generation. Shared by the recurrent builders and the char_lm task's
truncated-BPTT reading (task.state=carried), so a task never imports a model module."""
from __future__ import annotations

import keras


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def is_stateful(model: keras.Model) -> bool:
    """True when some layer of `model` carries its state from one batch to the next."""
    return any(getattr(layer, "stateful", False) for layer in _all_layers(model))


def state_variables(model: keras.Model) -> list:
    """The variables holding what the stateful layers of `model` carry ([] for a model without any)."""
    return [variable for layer in _all_layers(model) if getattr(layer, "stateful", False)
            for variable in (getattr(layer, "states", None) or [])]


def reset_states(model: keras.Model) -> None:
    """Zeroes every carried state of `model` (nothing for a model without stateful layers)."""
    for variable in state_variables(model):
        variable.assign(keras.ops.zeros(variable.shape, variable.dtype))


def stateful_twin(model: keras.Model, batch_size: int = 1) -> keras.Model:
    """A copy of stateful `model` with its weights that takes `batch_size` streams of any length (e.g. one stream
    fed a character at a time for sampling); its states start at zero and are its own."""
    given = model.inputs[0]
    inputs = keras.Input(batch_shape=(batch_size, None, *given.shape[2:]), dtype=given.dtype)
    twin = keras.models.clone_model(model, input_tensors=inputs)
    twin.set_weights(model.get_weights())
    return twin
