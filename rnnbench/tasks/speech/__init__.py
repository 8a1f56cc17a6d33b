"""Speech recognition with CTC (task "speech"): MFCC frames in, a label sequence out, scored by CER and WER.

The suite's sequence-to-sequence task. Four data sources, chosen with `dataset`, each a module of `readers/`:
  digits  connected spoken digits: utterances of 1..`max_digits` FSDD clips of one speaker joined by short seeded
          silences, labelled with the digit sequence ("3 0 7"; one label per digit, so `wer` is the digit error rate).
          Clips come from tfds `spoken_digit` (TFDS_DATA_DIR), or from `data_dir` holding FSDD's
          `{digit}_{speaker}_{index}.wav` files or its recordings tarball. Test utterances use only clips with index
          0-4 (FSDD's own test split) and validation utterances only a seeded held-out part of the other clips, so no
          evaluation clip is ever heard in training.
  yesno   OpenSLR yesno: `data_dir` holds wavs named by their labels (`0_1_1_0_1_0_0_1.wav`, 1 = yes, 0 = no); one
          label per word. There is no official split: `test_fraction` of the files is drawn with the seed.
  an4     CMU AN4 from precomputed 13-dim cepstra (`.mfc`, 100 frames/s): `data_dir` holds `etc/an4_{train,test}
          .{transcription,fileids}` and either `an4_feat_mfc.tar.gz` (unpacked into the cache) or the unpacked
          `an4/feat/...` tree. Character labels (A-Z and space). Official test split; validation holds out whole
          training speakers, since the test speakers are unseen too.
  csv     your own: `data_file` is a CSV with columns `path` (audio, relative to the CSV's folder) and `transcript`,
          and optionally `split` (train / val / test; otherwise drawn with the seed). Character labels.

Features: MFCCs with librosa (audio at another rate is resampled to `sample_rate`), optional deltas, per-utterance
mean/variance normalisation, cached on disk by `rnnbench.audio` (`cache.py`). AN4 ships cepstra, so only `deltas` and
`normalize` apply to it. Batches are padded per batch with 0.0 frames (no real frame is ever all 0.0) and bucketed by
length (`batching.py`).

Metrics: the model's CTC loss; `cer` and `wer` after greedy decoding on validation every epoch (a callback,
`decoding.py`; by default also what picks the best epoch, see `monitor`) and on test at the end, with `beam_cer` /
`beam_wer` after beam search on test. The leaderboard key is `wer` for word-label datasets (digits, yesno) and `cer`
for character-label ones (an4, csv). Baselines (`metrics.py`): an empty output, and the most frequent training
transcript for every test utterance. Options: `options.py`; splits and their checks: `splits.py`; run artifacts
(decoded test utterances, a posteriors plot): `artifacts.py`; transcribing new recordings (`rnnbench predict`) with
the front end each run logs in `front_end.json`: `predict.py`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnbench import audio
from rnnbench.ctc import ctc_loss
from rnnbench.options import as_dict
from rnnbench.pipeline import run_shuffle_seed
from rnnbench.registry import register_task
from rnnbench.spec import InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks.speech.artifacts import write_artifacts
from rnnbench.tasks.speech.batching import bucket_boundaries, make_dataset
from rnnbench.tasks.speech.data import Utterance
from rnnbench.tasks.speech.decoding import Decoder, ValidationErrorRates
from rnnbench.tasks.speech.metrics import baselines
from rnnbench.tasks.speech.options import SpeechOptions
from rnnbench.tasks.speech.predict import predict_from_run, save_front_end
from rnnbench.tasks.speech.readers import READERS
from rnnbench.tasks.speech.readers.an4 import AN4_SYMBOLS, read_mfc
from rnnbench.tasks.speech.readers.digits import DIGIT_WORDS, plan_connected_digits, render_digits
from rnnbench.tasks.speech.readers.fsdd import read_fsdd_folder, read_tfds_spoken_digit
from rnnbench.tasks.speech.splits import check_splits

# The names the task's tests used from the single module it once was, still importable from the package.
__all__ = ["AN4_SYMBOLS", "DIGIT_WORDS", "READERS", "SpeechOptions", "Utterance", "load", "make_dataset",
           "plan_connected_digits", "read_fsdd_folder", "read_mfc", "read_tfds_spoken_digit", "render_digits"]


@register_task("speech", options=SpeechOptions, predict=predict_from_run)
def load(options: SpeechOptions, *, batch_size: int = 32) -> TaskSpec:
    """Speech recognition with CTC: MFCC frames in, a label sequence out, scored by CER and WER."""
    reader = READERS[options.dataset]
    reader.validate(options)
    settings = audio.MfccSettings(
        sample_rate=options.sample_rate or reader.sample_rate, n_mfcc=options.n_mfcc, n_mels=options.n_mels,
        win_ms=options.win_ms, hop_ms=options.hop_ms, deltas=options.deltas, normalize=options.normalize,
    )
    rng = np.random.default_rng(options.seed)
    source = reader.read(options, settings, rng)
    splits, vocabulary, identity = source.splits, source.vocabulary, source.identity
    max_subsample = check_splits(splits, vocabulary, identity["name"])

    train, val, test = splits["train"], splits["val"], splits["test"]
    longest = max(len(u.features) for items in splits.values() for u in items)
    bounds = bucket_boundaries([len(u.features) for u in train], longest)
    label_length = max(len(vocabulary.encode(u.transcript)) for items in splits.values() for u in items)
    val_sample = [val[i] for i in sorted(rng.permutation(len(val))[:options.val_decode_limit])]
    val_decoder = Decoder(val_sample, vocabulary, batch_size, bounds, options.beam_width)
    test_decoder = Decoder(test, vocabulary, batch_size, bounds, options.beam_width)
    primary = "wer" if vocabulary.unit == "word" else "cer"

    def batches(utterances, shuffle_seed=None):
        return make_dataset(utterances, vocabulary, batch_size, bounds, label_length, shuffle_seed=shuffle_seed)

    frames = {k: int(sum(len(u.features) for u in v)) for k, v in splits.items()}

    def artifacts(model, out_dir) -> None:
        write_artifacts(Path(out_dir), model, test_decoder, test)
        save_front_end(Path(out_dir) / "front_end.json", options.dataset, settings, vocabulary, options.beam_width)

    return TaskSpec(
        name="speech",
        inputs=InputSpec("features", feature_dim=train[0].features.shape[1], masked=True, pad_value=0.0),
        outputs=OutputSpec("ctc", num_classes=len(vocabulary)),
        train=batches(train, shuffle_seed=options.seed),
        train_for=lambda run_seed: batches(train, shuffle_seed=run_shuffle_seed(options.seed, run_seed)),
        val=batches(val),
        test=batches(test),
        loss=ctc_loss,
        metrics=(),
        primary_metric=primary,
        higher_is_better=False,
        monitor=f"val_{primary}" if options.monitor == "error_rate" else "val_loss",
        baselines=baselines(train, test),
        dataset={**identity, **{f"{k}_utterances": len(v) for k, v in splits.items()},
                 **{f"{k}_frames": n for k, n in frames.items()}},
        options={**as_dict(options), "sample_rate": settings.sample_rate},  # the rate used, not None
        evaluate=lambda model: test_decoder.scores(model, beam=True),
        callbacks=lambda: [ValidationErrorRates(val_decoder)],
        artifacts=artifacts,
        notes={"label_unit": vocabulary.unit, "vocabulary": "".join(vocabulary.symbols) if vocabulary.unit == "char"
               else " ".join(vocabulary.symbols), "feature_dim": int(train[0].features.shape[1]),
               "frames_per_second": round(1000.0 / settings.hop_ms, 3), "bucket_bounds": list(bounds),
               "max_subsample": max_subsample},
    )
