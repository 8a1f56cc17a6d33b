"""Carried state for char_lm (task.state="carried"): the callback that zeroes a stateful model's state wherever
its streams start again, so no state leaks from one pass into the next or from training into an evaluation.

The batches are parallel streams (`reading.make_streams`): example i of batch k + 1 continues example i of batch k,
and the recurrent layers (built stateful by `rnnbench.models.recurrent` for a task with `InputSpec.streams`) carry
their state from one batch to the next. The state is zeroed:
  - at the start of every pass over the training data (with train.validations_per_epoch = 1, every epoch);
  - before and after every evaluation pass that Keras runs with this callback (validation during `fit`); a
    validation in the middle of a pass (validations_per_epoch > 1) puts the training state back afterwards, so the
    streams go on where they stopped;
  - at the end of training, so the test evaluation that follows `fit` starts from a zero state too.
The task's `evaluate` hook zeroes it around its own test pass as well.
"""
from __future__ import annotations

import keras

from rnnbench.state import reset_states, state_variables


class CarriedStateResets(keras.callbacks.Callback):
    """Zeroes the model's carried state at each training pass's first batch and around each evaluation."""

    def __init__(self, batches_per_pass: int):
        super().__init__()
        self.batches_per_pass = batches_per_pass
        self.resets = 0  # how many times the state was zeroed (read by the tests)
        self._pass, self._epoch_start, self._seen = None, 0, 0
        self._training, self._kept = False, None

    def _reset(self) -> None:
        reset_states(self.model)
        self.resets += 1

    def on_train_begin(self, logs=None):
        self._training, self._pass = True, None
        self._reset()

    def on_epoch_begin(self, epoch, logs=None):
        # The runner's stream is endless and a resumed run skips epoch * steps batches of it, so the position in
        # the training text follows from the epoch number; without a known epoch length, from the batches seen.
        steps = (self.params or {}).get("steps")
        self._epoch_start = epoch * steps if steps else self._seen

    def on_train_batch_begin(self, batch, logs=None):
        self._seen = self._epoch_start + batch + 1
        current = (self._epoch_start + batch) // self.batches_per_pass
        if current != self._pass:
            self._pass = current
            self._reset()

    def on_test_begin(self, logs=None):
        if self._training and self._pass is not None:
            self._kept = [keras.ops.convert_to_numpy(variable) for variable in state_variables(self.model)]
        self._reset()

    def on_test_end(self, logs=None):
        self._reset()
        if self._kept is not None:
            for variable, value in zip(state_variables(self.model), self._kept):
                variable.assign(value)
            self._kept = None

    def on_train_end(self, logs=None):
        self._training = False
        self._reset()
