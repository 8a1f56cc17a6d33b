"""Character-level language modelling (many-to-many, causal): predict every next character of a text.

Data: tensorflow-datasets' `tiny_shakespeare` (its own train/validation/test splits, 90/5/5 by position, read from
`TFDS_DATA_DIR`), or any UTF-8 text file given as `data_file`, split 90/5/5 by position (first 90% train, next 5%
validation, last 5% test), so no validation or test character ever appears in a training window.

Id scheme: the vocabulary is the set of characters of the TRAINING text, sorted by code point, with ids 1..V.
Id 0 is the out-of-vocabulary id: validation or test characters never seen in training map to it, as inputs and as
targets. There is no padding (every window is full length), so id 0 is an ordinary input here and
`InputSpec.masked` is False. Models predict `vocab_size = V + 1` classes, including the OOV class.

Training uses windows of `seq_len` input characters whose targets are the same characters shifted by one (truncated
backpropagation through time: each window starts from a zero state). Validation and test use non-overlapping
windows that tile their split; the few characters after the last whole window are not scored.

Carried state (`state="carried"`; the default "zero" is the above): every split is cut into `batch_size`
contiguous streams, and batch k holds window k of each stream, so example i of batch k + 1 continues example i of
batch k; recurrent models then build stateful layers and carry their state across batches, `seq_len` being the
truncation length. Training batches keep that order (never shuffled); every batch has exactly `batch_size`
examples (what does not fill a whole batch is dropped, under batch_size x seq_len characters per split, so the
scored characters are slightly fewer than with zero state). The state is zeroed at every training pass and
around every evaluation (`carried`). The n-gram baselines still see only each window's own characters, which
costs them at most the first two characters of each window.

Metrics: `loss` is the mean cross-entropy in nats per character; `bpc` (bits per character, loss / ln 2) and
`perplexity` (exp(loss)) are Keras metrics too, so `val_bpc` and `val_perplexity` are logged every epoch.
Baselines: unigram, bigram and trigram character models with additive smoothing (the smoothing picked on
validation), scored on exactly the test targets the networks are scored on, each seeing at most the context a
network sees in its window.

After training, `sample.txt` (a temperature sample) and `vocab.json` (the vocabulary and window length, everything
needed to sample the logged model later) are written as run artifacts; `generate_from_run`, registered as the task's
`generate` hook, samples any logged run; `predict_from_run`, its `predict` hook, gives a prompt's most likely next
characters and greedy continuation.

Layout: `vocab` (ids), `metrics` (bpc, perplexity), `reading` (the two sources, splits, windows, streams),
`ngrams` (the baselines), `generation` (sampling), `predict` (scoring prompts), `carried` (the state resets of
carried state); this module declares the options and assembles the `TaskSpec`.
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
from rnnbench.state import reset_states
from rnnbench.tasks.char_lm.carried import CarriedStateResets
from rnnbench.tasks.char_lm.generation import default_prompt, generate, generate_from_run
from rnnbench.tasks.char_lm.metrics import BitsPerCharacter, Perplexity, scores_from_nats
from rnnbench.tasks.char_lm.ngrams import NGRAM_BASELINES, SMOOTHING_GRID, NgramModel, ngram_baselines, \
    ngram_window_nats
from rnnbench.tasks.char_lm.predict import predict_from_run
from rnnbench.tasks.char_lm.report import report_notes
from rnnbench.tasks.char_lm.reading import SPLIT_FRACTIONS, TFDS_NAME, SplitTexts, make_streams, make_windows, \
    read_file_source, read_text_file, read_tfds_source, read_tfds_splits, split_by_position
from rnnbench.tasks.char_lm.vocab import OOV_ID, VOCAB_ARTIFACT, VOCAB_FORMAT, CharVocab

__all__ = ["NGRAM_BASELINES", "OOV_ID", "READERS", "SMOOTHING_GRID", "SPLIT_FRACTIONS", "TFDS_NAME", "VOCAB_ARTIFACT",
           "VOCAB_FORMAT", "BitsPerCharacter", "CharLmOptions", "CharVocab", "NgramModel", "Perplexity", "SplitTexts",
           "default_prompt", "generate", "generate_from_run", "load", "make_streams", "make_windows", "ngram_baselines",
           "ngram_window_nats", "read_text_file", "read_tfds_splits", "scores_from_nats", "split_by_position"]


@dataclasses.dataclass(frozen=True)
class CharLmOptions:
    seed: int = option(0, "shuffles the training windows (a new seeded order each epoch; not with carried state) "
                          "and seeds the artifact sample")
    data_file: str | None = option(None, "a UTF-8 text file to use instead of tfds tiny_shakespeare, split 90/5/5 "
                                         "by position", path=True)
    download: bool = option(False, "download tiny_shakespeare (1 MB) into TFDS_DATA_DIR when it is not there; "
                                   "off, a missing copy is an error at once")
    seq_len: int = option(100, "characters per window, the truncated-backpropagation length", minimum=1)
    train_stride: int | None = option(None, "characters between the starts of consecutive training windows; None "
                                            "means seq_len (non-overlapping); smaller values give overlapping "
                                            "windows and more steps per epoch", minimum=1)
    max_train_chars: int | None = option(None, "keep only the first N characters of the training split (for smoke "
                                               "runs); None keeps everything; the vocabulary follows the kept text",
                                         minimum=1)
    max_eval_chars: int | None = option(None, "keep only the first N characters of each of the validation and test "
                                              "splits (for smoke runs); None keeps everything", minimum=1)
    state: str = option("zero", "zero: every window starts from a zero state, training windows shuffled; carried: "
                                "each split cut into train.batch_size contiguous streams read in order, the "
                                "recurrent state carried from one window to the next (truncated BPTT, seq_len "
                                "steps)", choices=("zero", "carried"))
    sample_prompt: str | None = option(None, "the text the artifact sample continues; None uses the first complete "
                                             "line of the test split")
    sample_length: int = option(500, "characters sampled for sample.txt", minimum=0)
    sample_temperature: float = option(0.8, "the softmax temperature of sample.txt, a finite number >= 0 (0 picks "
                                            "the most likely character)")

    def __post_init__(self):
        if not math.isfinite(self.sample_temperature) or self.sample_temperature < 0:
            raise UserError(f"task.sample_temperature must be a finite number >= 0, got {self.sample_temperature}")
        if self.state == "carried" and self.train_stride not in (None, self.seq_len):
            raise UserError(f"task.train_stride={self.train_stride} cannot be used with task.state=carried: each "
                            "stream's windows follow one another, seq_len apart; leave task.train_stride unset or "
                            "use task.state=zero")

    @property
    def source(self) -> str:
        """The key in `READERS` of the reader these options ask for: the text file, or else tfds."""
        return "file" if self.data_file is not None else "tfds"


READERS = {
    "tfds": lambda options: read_tfds_source(options.download),
    "file": lambda options: read_file_source(options.data_file),
}


@register_task("char_lm", options=CharLmOptions, generate=generate_from_run, predict=predict_from_run,
               report_notes=report_notes)
def load(options: CharLmOptions, *, batch_size: int = 32) -> TaskSpec:
    """Next-character prediction on tiny_shakespeare or a local text file."""
    seed, seq_len = options.seed, options.seq_len
    source = READERS[options.source](options)
    texts = source.trimmed(options.max_train_chars, options.max_eval_chars, seq_len)

    vocab = CharVocab.from_text(texts["train"], seq_len)
    ids = {name: vocab.encode(text) for name, text in texts.items()}
    carried = options.state == "carried"
    if carried:
        windows = {name: make_streams(ids[name], seq_len, batch_size, source.where[name]) for name in ids}
    else:
        windows = {
            "train": make_windows(ids["train"], seq_len, options.train_stride or seq_len),
            "val": make_windows(ids["val"], seq_len, seq_len),
            "test": make_windows(ids["test"], seq_len, seq_len),
        }
    baselines, chosen_alpha = ngram_baselines(ids["train"], windows, vocab.size)
    x_test, y_test = windows["test"]

    def evaluate(model) -> dict:
        """Exact test loss/bpc/perplexity from the logits, accumulated in float64 and free of any penalty terms.

        The batches go in order, so a stateful model carries its state through the test streams, from zero."""
        reset_states(model)
        total = 0.0
        for start in range(0, len(x_test), batch_size):
            logits = np.asarray(model.predict_on_batch(x_test[start:start + batch_size]), dtype=np.float64)
            shifted = logits - logits.max(axis=-1, keepdims=True)
            log_norm = np.log(np.exp(shifted).sum(axis=-1))
            target = np.take_along_axis(shifted, y_test[start:start + batch_size, :, None], axis=-1)[..., 0]
            total += float(np.sum(log_norm - target))
        reset_states(model)
        return scores_from_nats(total / y_test.size)

    def artifacts(model, out_dir: Path) -> None:
        vocab.save(out_dir / "vocab.json")
        prompt = options.sample_prompt if options.sample_prompt is not None else default_prompt(texts["test"])
        sample = generate(model, vocab, prompt, options.sample_length, options.sample_temperature, seed)
        header = (f"# {model.name}, temperature {options.sample_temperature}, seed {seed}, {options.sample_length} "
                  f"characters after the prompt {prompt!r}\n\n")
        (out_dir / "sample.txt").write_text(header + sample, encoding="utf-8")

    dataset = {**source.identity, "vocab_size": vocab.size,
               **{f"{name}_chars": len(text) for name, text in texts.items()},
               **{f"{name}_windows": len(x) for name, (x, _) in windows.items()}}
    train_batches = len(windows["train"][0]) // batch_size
    notes = {"oov_id": OOV_ID, **chosen_alpha, **({"streams": batch_size} if carried else {}),
             **{f"{name}_oov_rate": float(np.mean(ids[name] == OOV_ID)) for name in ("val", "test")}}
    return TaskSpec(
        name="char_lm",
        inputs=InputSpec("tokens", vocab_size=vocab.size, length=seq_len, masked=False,
                         streams=batch_size if carried else None),
        outputs=OutputSpec("causal_steps", num_classes=vocab.size),
        # Carried state reads the streams in order: no shuffle, whatever the seeds.
        train=array_dataset(*windows["train"], batch_size, shuffle_seed=None if carried else seed),
        train_for=lambda run_seed: array_dataset(*windows["train"], batch_size, shuffle_seed=None if carried
                                                 else run_shuffle_seed(seed, run_seed)),
        val=array_dataset(*windows["val"], batch_size),
        test=array_dataset(*windows["test"], batch_size),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=(BitsPerCharacter(), Perplexity()),
        primary_metric="bpc",
        higher_is_better=False,
        monitor="val_loss",
        baselines=baselines,
        dataset=dataset,
        # The stride the windows were cut with, so a run records what it trained on rather than "None".
        options={**as_dict(options), "train_stride": options.train_stride or seq_len},
        evaluate=evaluate,
        callbacks=(lambda: [CarriedStateResets(train_batches)]) if carried else None,
        artifacts=artifacts,
        notes=notes,
    )
