"""The contract between a task and everything else: a frozen `TaskSpec`.

A task loader returns one; model builders read `inputs` and `outputs` to shape the network, and the runner reads the
rest to compile, train, evaluate and log. Nothing else passes between a task and a model.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

# Head kinds a model builder must support.
#   classification: one label per sequence (many-to-one), logits (batch, num_classes)
#   causal_steps:   one label per step, step t may only see steps <= t (language model), logits (batch, T, num_classes)
#   ctc:            per-frame logits (batch, T', num_classes + 1) with the CTC blank at index 0; may look both ways
#   forecast:       the next `horizon` values of `targets` series, (batch, horizon, targets)
#   seq2seq:        an encoder-decoder: x is (source tokens, decoder input), y the target tokens (batch, T_out), and
#                   the logits (batch, T_out, num_classes). Target ids: 0 pads, SEQ2SEQ_START opens the decoder input
#                   (which is y shifted right by one step: teacher forcing), SEQ2SEQ_END closes y; decoding writes at
#                   most `max_output_length` tokens, the end token included. A model with attention names the layer
#                   SEQ2SEQ_ALIGNMENT_LAYER; it returns [context, weights (batch, T_out, T_in)].
HEAD_KINDS = ("classification", "causal_steps", "ctc", "forecast", "seq2seq")
# The heads a model builder serves unless it declares its own as the attribute `heads` (the encoder-decoders of
# rnnbench.models.seq2seq declare ("seq2seq",)): the single-input heads, which every other builder builds.
SINGLE_INPUT_HEADS = ("classification", "causal_steps", "ctc", "forecast")
SEQ2SEQ_PAD, SEQ2SEQ_START, SEQ2SEQ_END = 0, 1, 2
SEQ2SEQ_ALIGNMENT_LAYER = "alignment"
SEQ2SEQ_INPUTS = ("source", "decoder_in")  # the names of a seq2seq model's two inputs, in the order of x
INPUT_KINDS = ("tokens", "features")


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What a batch of `x` looks like."""

    kind: str  # "tokens": int ids, 0 is padding when `masked`; "features": float (batch, T, feature_dim)
    vocab_size: Optional[int] = None  # tokens only: ids lie in [0, vocab_size)
    feature_dim: Optional[int] = None  # features only
    length: Optional[int] = None  # fixed number of timesteps, or None when batches are padded to their own length
    masked: bool = False  # right padding present: token id 0, or a feature frame that is all `pad_value`
    pad_value: float = 0.0
    # Parallel streams: every batch (training and evaluation) holds exactly `streams` examples, and example i of a
    # batch continues example i of the batch before, so a recurrent model may carry its state across batches
    # (char_lm's task.state="carried"). None: examples are independent and batches of any size.
    streams: Optional[int] = None

    def __post_init__(self):
        if self.streams is not None and self.streams < 1:
            raise ValueError(f"InputSpec.streams must be None or >= 1, got {self.streams}")
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"InputSpec.kind must be one of {INPUT_KINDS}, got {self.kind!r}")
        if self.kind == "tokens" and not self.vocab_size:
            raise ValueError("InputSpec(kind='tokens') needs vocab_size")
        if self.kind == "features" and not self.feature_dim:
            raise ValueError("InputSpec(kind='features') needs feature_dim")


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What the model must produce."""

    head: str
    num_classes: Optional[int] = None  # classification / causal_steps / seq2seq: classes; ctc: labels, no blank
    horizon: Optional[int] = None  # forecast: steps ahead
    targets: int = 1  # forecast: values predicted per step
    max_output_length: Optional[int] = None  # seq2seq: the most tokens decoding writes, the end token included

    def __post_init__(self):
        if self.head not in HEAD_KINDS:
            raise ValueError(f"OutputSpec.head must be one of {HEAD_KINDS}, got {self.head!r}")
        if self.head != "forecast" and not self.num_classes:
            raise ValueError(f"OutputSpec(head={self.head!r}) needs num_classes")
        if self.head == "forecast" and not self.horizon:
            raise ValueError("OutputSpec(head='forecast') needs horizon")
        if self.head == "seq2seq" and (not self.max_output_length or self.num_classes <= SEQ2SEQ_END):
            raise ValueError("OutputSpec(head='seq2seq') needs max_output_length and num_classes above the pad, "
                             "start and end ids")

    @property
    def causal(self) -> bool:
        """True when a prediction for step t must not depend on later steps."""
        return self.head == "causal_steps"


class NamedInputs(dict):
    """A model's several inputs by name, sliceable like one array (`x[:4]`: the first 4 examples of each), so code
    written for one input array keeps working; MLflow infers a signature of named tensors from it."""

    def __getitem__(self, key):
        if isinstance(key, slice):
            return NamedInputs({name: value[key] for name, value in self.items()})
        return super().__getitem__(key)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything the runner needs from a task. Datasets yield batched `(x, y)` pairs.

    Hooks are optional plain callables:
      evaluate(model) -> {name: value}: extra test metrics the compiled metrics cannot compute (e.g. CER after
          decoding, errors on reconstructed prices). Names carry no prefix; the runner logs them as `test_<name>`.
      callbacks() -> [keras.callbacks.Callback]: extra callbacks, e.g. one that adds `val_cer` to the epoch logs.
      artifacts(model, out_dir) -> None: writes task-specific files (plots, samples, tables) into `out_dir`.
    """

    name: str
    inputs: InputSpec
    outputs: OutputSpec
    # A task fills all four; a notebook that only builds a model can leave them out (`TaskSpec(name, inputs, outputs)`).
    train: Any = None  # tf.data.Dataset
    val: Any = None
    test: Any = None
    loss: Any = None
    metrics: Sequence[Any] = ()
    primary_metric: str = "loss"  # the leaderboard's sort key, without prefix (e.g. "rmse", "accuracy")
    higher_is_better: bool = False
    monitor: str = "val_loss"  # picks the best epoch; lower is better
    baselines: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    dataset: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # name, version or sha256, split sizes
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the resolved loader options
    evaluate: Optional[Callable[[Any], Mapping[str, float]]] = None
    callbacks: Optional[Callable[[], list]] = None
    artifacts: Optional[Callable[[Any, Path], None]] = None
    notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # extra params logged with every run
    # run seed -> a new training pipeline. A tf.data shuffle advances its order with every pass over the *same*
    # dataset object, so runs sharing `train` would see orders that depend on what trained before them.
    train_for: Optional[Callable[[int], Any]] = None

    def training_data(self, run_seed: int):
        """The training batches of one run: their order depends on the task's seed, `run_seed` and the epoch only."""
        return self.train_for(run_seed) if self.train_for else self.train

    def example_batch(self):
        """One `(x, y)` test batch as NumPy arrays (for signatures, latency and plots); the seq2seq head's x, a
        (source, decoder input) tuple in the datasets, comes as `NamedInputs` (keys `SEQ2SEQ_INPUTS`)."""
        for x, y in self.test.take(1).as_numpy_iterator():
            if self.outputs.head == "seq2seq" and isinstance(x, tuple):
                x = NamedInputs(zip(SEQ2SEQ_INPUTS, x))
            return x, y
        raise ValueError(f"task {self.name!r}: the test split is empty")
