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

Metrics: `loss` is the mean cross-entropy in nats per character; `bpc` (bits per character, loss / ln 2) and
`perplexity` (exp(loss)) are Keras metrics too, so `val_bpc` and `val_perplexity` are logged every epoch.
Baselines: unigram, bigram and trigram character models with additive smoothing (the smoothing picked on
validation), scored on exactly the test targets the networks are scored on, each seeing at most the context a
network sees in its window.

After training, `sample.txt` (a temperature sample) and `vocab.json` (the vocabulary and window length, everything
needed to sample the logged model later) are written as run artifacts; `generate_from_run` samples any logged run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from rnnbench.errors import DataError, UserError
from rnnbench.registry import register_task
from rnnbench.tfds_data import prepared_builder
from rnnbench.tasks._pipeline import array_dataset, run_shuffle_seed
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec

TFDS_NAME = "tiny_shakespeare"
OOV_ID = 0
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)
# The runner stores the files of the `artifacts` hook under "task/" in the run's artifacts.
VOCAB_ARTIFACT = "task/vocab.json"
VOCAB_FORMAT = "rnnbench.char_lm.vocab/1"
SMOOTHING_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
NGRAM_BASELINES = {"unigram": 1, "bigram": 2, "trigram": 3}


# ---------------------------------------------------------------------------------------------------------------------
# Vocabulary


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """Characters with ids 1..len(chars) (id 0 is OOV) and the window length the model was trained on."""

    chars: tuple[str, ...]
    seq_len: int

    @classmethod
    def from_text(cls, text: str, seq_len: int) -> "CharVocab":
        return cls(tuple(sorted(set(text))), seq_len)

    @property
    def size(self) -> int:
        """Number of ids, OOV included: the models' vocab_size and num_classes."""
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of `text`; characters outside the vocabulary become OOV_ID."""
        # Vectorised through code points: a Python loop over a million characters would dominate loading time.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        known = np.frombuffer("".join(self.chars).encode("utf-32-le"), dtype=np.uint32)
        if len(known) == 0:
            return np.full(len(codes), OOV_ID, dtype=np.int32)
        position = np.minimum(np.searchsorted(known, codes), len(known) - 1)
        return np.where(known[position] == codes, position + 1, OOV_ID).astype(np.int32)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; OOV ids become U+FFFD (the replacement character)."""
        return "".join(self.chars[i - 1] if 0 < i <= len(self.chars) else "\ufffd" for i in ids)

    def to_json(self) -> dict:
        return {"format": VOCAB_FORMAT, "oov_id": OOV_ID, "seq_len": self.seq_len, "chars": list(self.chars)}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "CharVocab":
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            if payload.get("format") != VOCAB_FORMAT:
                raise ValueError(f"format is {payload.get('format')!r}, expected {VOCAB_FORMAT!r}")
            chars = tuple(payload["chars"])
            if any(not isinstance(c, str) or len(c) != 1 for c in chars) or list(chars) != sorted(set(chars)):
                raise ValueError("'chars' must be distinct single characters sorted by code point")
            seq_len = int(payload["seq_len"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise DataError(f"{path}: not a char_lm vocabulary file ({error}); use the vocab.json that the "
                            "char_lm task logged with the run") from None
        return cls(chars, seq_len)


# ---------------------------------------------------------------------------------------------------------------------
# Metrics in nats, bits and perplexity per character


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


# ---------------------------------------------------------------------------------------------------------------------
# Reading the text


def _missing_tfds_remedy() -> str:
    return (
        f"either set TFDS_DATA_DIR to a folder that holds {TFDS_NAME}/1.0.0 (a tensorflow-datasets data dir), "
        "or give any UTF-8 text file with --set task.data_file=path/to/text.txt"
    )


def read_tfds_splits(download: bool) -> tuple[dict[str, str], dict]:
    """({"train", "val", "test"} -> text, identity) of tfds tiny_shakespeare, from TFDS_DATA_DIR read at call time."""
    builder = prepared_builder(TFDS_NAME, download, _missing_tfds_remedy())
    texts = {}
    for ours, theirs in (("train", "train"), ("val", "validation"), ("test", "test")):
        try:
            examples = [example["text"] for example in builder.as_dataset(split=theirs).as_numpy_iterator()]
            # The builder stores each split as one example; joining keeps any other layout working too.
            texts[ours] = b"".join(examples).decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"tfds dataset {TFDS_NAME} in {builder.data_dir}: the {theirs} split is not valid UTF-8 "
                            f"({error.reason} at byte {error.start}); delete that folder and prepare it again, or "
                            + _missing_tfds_remedy()) from None
        except (tf.errors.DataLossError, tf.errors.NotFoundError, KeyError) as error:
            raise DataError(f"tfds dataset {TFDS_NAME} in {builder.data_dir}: the {theirs} split cannot be read "
                            f"({type(error).__name__}: {str(error)[:300]}); delete that folder and prepare it "
                            "again, or " + _missing_tfds_remedy()) from None
    identity = {"name": TFDS_NAME, "source": "tfds", "version": str(builder.info.version)}
    return texts, identity


def read_text_file(path: str | Path) -> str:
    """The whole file as text, with DataError (file, problem, fix) for anything that is not usable UTF-8 text."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check task.data_file (relative paths start at the current folder)")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; task.data_file must name one UTF-8 text file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error}); check the file's permissions") from None
    if not raw:
        raise DataError(f"{path}: the file is empty; give a text file with enough characters for three splits")
    try:
        # utf-8-sig drops a leading byte-order mark, which would otherwise become a character of the vocabulary.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not valid UTF-8 ({error.reason} at byte {error.start}); convert it first, e.g. "
                        f"iconv -f LATIN1 -t UTF-8 {path.name} > {path.stem}.utf8.txt") from None
    if "\x00" in text:
        raise DataError(f"{path}: contains NUL characters at offset {text.index(chr(0))}, so it is binary, not "
                        "text; give a plain UTF-8 text file")
    return text


def split_by_position(text: str, fractions: Sequence[float] = SPLIT_FRACTIONS) -> dict[str, str]:
    """Consecutive train/val/test parts of `text` in order; together they are exactly `text`."""
    bounds = np.round(np.cumsum((0.0,) + tuple(fractions)) * len(text)).astype(int)
    return {name: text[bounds[i]:bounds[i + 1]] for i, name in enumerate(("train", "val", "test"))}


def _sha256(*texts: str) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------------
# Windows and baselines


def make_windows(ids: np.ndarray, seq_len: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """x = ids[s : s + seq_len], y = ids[s + 1 : s + seq_len + 1] for s = 0, stride, 2 stride, ... while they fit."""
    starts = np.arange(0, len(ids) - seq_len, stride)
    x = ids[starts[:, None] + np.arange(seq_len)]
    return x.astype(np.int32), ids[starts[:, None] + np.arange(1, seq_len + 1)].astype(np.int32)


class NgramModel:
    """Character n-gram model with additive smoothing, counted sparsely (works for any vocabulary size)."""

    def __init__(self, order: int, vocab_size: int, alpha: float = 1.0):
        self.order, self.vocab_size, self.alpha = order, vocab_size, alpha

    def _keys(self, contexts: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        context_key = np.zeros(len(targets), dtype=np.int64)
        for column in range(contexts.shape[1]):
            context_key = context_key * self.vocab_size + contexts[:, column]
        return context_key, context_key * self.vocab_size + targets

    def fit(self, ids: np.ndarray) -> "NgramModel":
        """Counts every (previous order-1 characters, character) pair of the training sequence."""
        ids = ids.astype(np.int64)
        context_length = self.order - 1
        contexts = np.stack([ids[j:len(ids) - context_length + j] for j in range(context_length)], axis=1) \
            if context_length else np.zeros((len(ids), 0), dtype=np.int64)
        context_key, joint_key = self._keys(contexts, ids[context_length:])
        self.context_keys_, self.context_counts_ = np.unique(context_key, return_counts=True)
        self.joint_keys_, self.joint_counts_ = np.unique(joint_key, return_counts=True)
        return self

    @staticmethod
    def _lookup(keys: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
        position = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
        return np.where(keys[position] == queries, counts[position], 0).astype(np.float64)

    def log_probs(self, contexts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Natural-log probability of each target given its row of order-1 previous ids."""
        context_key, joint_key = self._keys(contexts.astype(np.int64), targets.astype(np.int64))
        joint = self._lookup(self.joint_keys_, self.joint_counts_, joint_key)
        context = self._lookup(self.context_keys_, self.context_counts_, context_key)
        return np.log(joint + self.alpha) - np.log(context + self.alpha * self.vocab_size)


def ngram_window_nats(models: Sequence[NgramModel], x: np.ndarray, y: np.ndarray) -> float:
    """Mean nats per target of windows (x, y) under n-gram models of orders 1..len(models).

    A target at step t may use the inputs x[: t + 1] of its own window only, like a network; where the window holds
    fewer than order-1 previous characters the highest order that fits is used.
    """
    total = 0.0
    for t in range(x.shape[1]):
        model = models[min(len(models), t + 2) - 1]
        context_length = model.order - 1
        contexts = x[:, t + 1 - context_length:t + 1] if context_length else np.zeros((len(x), 0), np.int64)
        total += float(np.sum(model.log_probs(contexts, y[:, t])))
    return -total / y.size


def ngram_baselines(train_ids, windows: dict, vocab_size: int) -> tuple[dict, dict]:
    """Test scores of the unigram/bigram/trigram baselines, and the smoothing each picked on validation."""
    baselines, chosen_alpha, models = {}, {}, []
    for name, order in NGRAM_BASELINES.items():
        model = NgramModel(order, vocab_size).fit(train_ids)
        best = None
        for alpha in SMOOTHING_GRID:
            model.alpha = alpha
            val_nats = ngram_window_nats(models + [model], *windows["val"])
            if best is None or val_nats < best[0]:
                best = (val_nats, alpha)
        model.alpha = best[1]
        models.append(model)
        chosen_alpha[f"{name}_alpha"] = best[1]
        baselines[name] = scores_from_nats(ngram_window_nats(models, *windows["test"]))
    return baselines, chosen_alpha


# ---------------------------------------------------------------------------------------------------------------------
# Sampling


def _context_length(model: keras.Model, vocab: CharVocab) -> int:
    fixed = model.inputs[0].shape[1] if model.inputs else None
    return int(fixed or vocab.seq_len)


def generate(model: keras.Model, vocab: CharVocab, prompt: str, length: int, temperature: float = 0.8,
             seed: int = 0) -> str:
    """`prompt` followed by `length` sampled characters.

    Each step feeds the last `seq_len` characters (the window the model was trained on) and samples the next one
    from softmax(logits / temperature); temperature 0 picks the most likely character. The OOV class is never
    sampled, because it stands for no particular character. Shorter contexts are right-padded: the model is causal,
    so the padding after the last real character cannot change its prediction.
    """
    if not prompt:
        raise UserError("the prompt is empty; give at least one character for the model to continue (e.g. '\\n')")
    if length < 0:
        raise UserError(f"length must be >= 0, got {length}")
    if not math.isfinite(temperature) or temperature < 0:
        raise UserError(f"temperature must be a finite number >= 0, got {temperature}")
    classes = model.outputs[0].shape[-1]
    if classes != vocab.size:
        raise DataError(f"the vocabulary has {vocab.size} ids but the model predicts {classes} classes; use the "
                        "vocab.json logged with this same model")
    window = _context_length(model, vocab)
    ids = list(vocab.encode(prompt))
    rng = np.random.default_rng(seed)
    batch = np.zeros((1, window), dtype=np.int32)
    generated = []
    for _ in range(length):
        context = ids[-window:]
        batch[0, :] = 0
        batch[0, :len(context)] = context
        logits = np.asarray(model.predict_on_batch(batch), dtype=np.float64)[0, len(context) - 1]
        logits[OOV_ID] = -np.inf
        if temperature == 0:
            next_id = int(np.argmax(logits))
        else:
            scaled = logits / temperature
            probabilities = np.exp(scaled - np.max(scaled))
            next_id = int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))
        ids.append(next_id)
        generated.append(next_id)
    return prompt + vocab.decode(generated)


def generate_from_run(run_id: str, prompt: str, length: int, temperature: float, seed: int = 0) -> str:
    """Samples the char_lm model logged with MLflow run `run_id` (its model and its `task/vocab.json`)."""
    from rnnbench import tracking

    vocab = CharVocab.load(tracking.download_artifact(run_id, VOCAB_ARTIFACT))
    model = tracking.load_model(run_id)
    return generate(model, vocab, prompt, length, temperature, seed)


# ---------------------------------------------------------------------------------------------------------------------
# The task


def default_prompt(text: str) -> str:
    """The first complete non-empty line of `text` with its newline (the first line may be cut by the split), or
    its first 40 characters when no line is complete."""
    lines = text.split("\n")
    complete = [line for line in lines[1:-1] if line.strip()]
    return complete[0] + "\n" if complete else text[:40]


def _check_options(batch_size, seq_len, train_stride, max_train_chars, max_eval_chars, sample_length,
                   sample_temperature) -> None:
    for label, value in (("batch_size", batch_size), ("seq_len", seq_len), ("train_stride", train_stride),
                         ("max_train_chars", max_train_chars), ("max_eval_chars", max_eval_chars)):
        if value is not None and value < 1:
            raise UserError(f"task.{label} must be >= 1, got {value}")
    if sample_length < 0:
        raise UserError(f"task.sample_length must be >= 0, got {sample_length}")
    if not math.isfinite(sample_temperature) or sample_temperature < 0:
        raise UserError(f"task.sample_temperature must be a finite number >= 0, got {sample_temperature}")


@register_task("char_lm")
def load(
    *,
    batch_size: int = 32,
    seed: int = 0,
    data_file: str | None = None,
    download: bool = True,
    seq_len: int = 100,
    train_stride: int | None = None,
    max_train_chars: int | None = None,
    max_eval_chars: int | None = None,
    sample_prompt: str | None = None,
    sample_length: int = 500,
    sample_temperature: float = 0.8,
) -> TaskSpec:
    """Next-character prediction on tiny_shakespeare or a local text file.

    Args:
      seed: shuffles the training windows (a new seeded order each epoch) and seeds the artifact sample.
      data_file: a UTF-8 text file to use instead of tfds tiny_shakespeare, split 90/5/5 by position.
      download: let tensorflow-datasets download tiny_shakespeare (1 MB) when TFDS_DATA_DIR does not hold it.
      seq_len: characters per window, the truncated-backpropagation length.
      train_stride: characters between the starts of consecutive training windows; None means seq_len
        (non-overlapping); smaller values give overlapping windows and more steps per epoch.
      max_train_chars, max_eval_chars: keep only the first N characters of the training split, and of each of the
        validation and test splits (for smoke runs); None keeps everything. The vocabulary follows the kept text.
      sample_prompt: the text the artifact sample continues; None uses the first complete line of the test split.
      sample_length, sample_temperature: characters sampled for sample.txt, and the softmax temperature.
    """
    _check_options(batch_size, seq_len, train_stride, max_train_chars, max_eval_chars, sample_length,
                   sample_temperature)
    if data_file is not None:
        whole = read_text_file(data_file)
        texts = split_by_position(whole)
        identity = {"name": Path(data_file).name, "source": "file", "sha256": _sha256(whole)}
        where = {name: f"{data_file} ({name} part, {fraction:.0%} by position)"
                 for name, fraction in zip(texts, SPLIT_FRACTIONS)}
    else:
        texts, identity = read_tfds_splits(download)
        identity["sha256"] = _sha256(texts["train"], texts["val"], texts["test"])
        where = {name: f"tfds {TFDS_NAME} {name} split" for name in texts}
    texts = {"train": texts["train"][:max_train_chars], "val": texts["val"][:max_eval_chars],
             "test": texts["test"][:max_eval_chars]}
    for name, text in texts.items():
        if len(text) < seq_len + 1:
            raise DataError(f"{where[name]}: {len(text)} characters, fewer than seq_len + 1 = {seq_len + 1} needed "
                            "for one window; use a longer text, a smaller task.seq_len, or larger "
                            "task.max_train_chars / task.max_eval_chars")

    vocab = CharVocab.from_text(texts["train"], seq_len)
    ids = {name: vocab.encode(text) for name, text in texts.items()}
    windows = {
        "train": make_windows(ids["train"], seq_len, train_stride or seq_len),
        "val": make_windows(ids["val"], seq_len, seq_len),
        "test": make_windows(ids["test"], seq_len, seq_len),
    }
    baselines, chosen_alpha = ngram_baselines(ids["train"], windows, vocab.size)
    x_test, y_test = windows["test"]

    def evaluate(model) -> dict:
        """Exact test loss/bpc/perplexity from the logits, accumulated in float64 and free of any penalty terms."""
        total = 0.0
        for start in range(0, len(x_test), batch_size):
            logits = np.asarray(model.predict_on_batch(x_test[start:start + batch_size]), dtype=np.float64)
            shifted = logits - logits.max(axis=-1, keepdims=True)
            log_norm = np.log(np.exp(shifted).sum(axis=-1))
            target = np.take_along_axis(shifted, y_test[start:start + batch_size, :, None], axis=-1)[..., 0]
            total += float(np.sum(log_norm - target))
        return scores_from_nats(total / y_test.size)

    def artifacts(model, out_dir: Path) -> None:
        vocab.save(out_dir / "vocab.json")
        prompt = sample_prompt if sample_prompt is not None else default_prompt(texts["test"])
        sample = generate(model, vocab, prompt, sample_length, sample_temperature, seed)
        header = (f"# {model.name}, temperature {sample_temperature}, seed {seed}, {sample_length} characters after "
                  f"the prompt {prompt!r}\n\n")
        (out_dir / "sample.txt").write_text(header + sample, encoding="utf-8")

    options = dict(seed=seed, data_file=data_file, download=download, seq_len=seq_len,
                   train_stride=train_stride or seq_len, max_train_chars=max_train_chars,
                   max_eval_chars=max_eval_chars, sample_prompt=sample_prompt, sample_length=sample_length,
                   sample_temperature=sample_temperature)
    dataset = {**identity, "vocab_size": vocab.size,
               **{f"{name}_chars": len(text) for name, text in texts.items()},
               **{f"{name}_windows": len(x) for name, (x, _) in windows.items()}}
    notes = {"oov_id": OOV_ID, **chosen_alpha,
             **{f"{name}_oov_rate": float(np.mean(ids[name] == OOV_ID)) for name in ("val", "test")}}
    return TaskSpec(
        name="char_lm",
        inputs=InputSpec("tokens", vocab_size=vocab.size, length=seq_len, masked=False),
        outputs=OutputSpec("causal_steps", num_classes=vocab.size),
        train=array_dataset(*windows["train"], batch_size, shuffle_seed=seed),
        train_for=lambda run_seed: array_dataset(*windows["train"], batch_size,
                                                 shuffle_seed=run_shuffle_seed(seed, run_seed)),
        val=array_dataset(*windows["val"], batch_size),
        test=array_dataset(*windows["test"], batch_size),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=(BitsPerCharacter(), Perplexity()),
        primary_metric="bpc",
        higher_is_better=False,
        monitor="val_loss",
        baselines=baselines,
        dataset=dataset,
        options=options,
        evaluate=evaluate,
        artifacts=artifacts,
        notes=notes,
    )
