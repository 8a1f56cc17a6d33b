"""The speech task: MFCCs on synthesized tones, CTC decoding and loss with known answers, CER/WER on known strings,
the AN4 `.mfc` reader, batching and padding, the feature cache, every bad-input error, and tiny end-to-end runs on
synthetic audio and (when present) the real yesno, FSDD and AN4 data."""
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from rnnbench import audio, ctc
from rnnbench.errors import DataError, UserError
from rnnbench.tasks import speech
from tiny_data import make_an4, write_mfc

RATE = 16000
# Two "words" for the synthetic corpus: each letter is a tone, separated by short pauses.
TONES = {"a": 500.0, "b": 1500.0, "c": 3000.0}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache, so none can pass on another's cached features."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RNNBENCH_CACHE_DIR", str(folder))
    return folder


def tone(frequency: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def spoken(text: str, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A waveform "saying" `text` letter by letter as tones, with pauses of low noise around and between them."""
    rng = np.random.default_rng(seed)
    pause = lambda: (rng.standard_normal(int(0.06 * rate)) * 0.003).astype(np.float32)  # noqa: E731
    pieces = [pause()]
    for letter in text:
        pieces += [tone(TONES[letter], 0.12, rate), pause()]
    return np.concatenate(pieces)


def write_csv_corpus(folder: Path, rows, header=("path", "transcript")) -> Path:
    """Writes wavs for `rows` of (name, text[, split]); some at 8 kHz so that resampling runs too."""
    folder.mkdir(parents=True, exist_ok=True)
    listing = folder / "list.csv"
    with open(listing, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, (name, text, *split) in enumerate(rows):
            rate = 8000 if i % 3 == 0 else RATE
            soundfile.write(folder / f"{name}.wav", spoken(text, rate, seed=i), rate, subtype="PCM_16")
            writer.writerow([f"{name}.wav", text, *split][: len(header)])
    return listing


def synthetic_rows(n: int = 18):
    words = ["ab", "ba", "abc", "cab", "bca", "ca"]
    return [(f"utt{i:02d}", words[i % len(words)]) for i in range(n)]


def tiny_run(spec, tmp_path: Path):
    """Trains a tiny GRU for one epoch through the task's own datasets and hooks; returns (history, test, files)."""
    from rnnbench.models import compile_model, gru

    model = compile_model(gru(spec, units=8, subsample=2), spec, learning_rate=1e-2)
    history = model.fit(spec.train, validation_data=spec.val, epochs=1, verbose=0, callbacks=spec.callbacks())
    test = spec.evaluate(model)
    out = tmp_path / "artifacts"
    out.mkdir()
    spec.artifacts(model, out)
    return history.history, test, out


# ---------------------------------------------------------------------------------------------------------------------
# Features.


def test_mfcc_of_a_tone_has_the_expected_shape_and_deltas():
    settings = audio.MfccSettings(sample_rate=RATE, n_mfcc=13, deltas=2, normalize="none")
    features = audio.features_from_waveform(tone(440.0, 1.0), RATE, settings)
    # 1 s at a 10 ms hop with centred frames: 101 frames; MFCC + delta + delta-delta.
    assert features.shape == (101, 39) and features.dtype == np.float32
    # A steady tone has steady cepstra: the deltas in the middle of the tone are ~0.
    assert np.abs(features[10:-10, 13:]).max() < 1e-3 * np.abs(features[10:-10, :13]).max()


def test_mfcc_tells_tones_apart_and_resamples_other_rates():
    settings = audio.MfccSettings(sample_rate=RATE, normalize="none")
    low = audio.features_from_waveform(tone(300.0, 0.5), RATE, settings)
    high = audio.features_from_waveform(tone(3000.0, 0.5), RATE, settings)
    assert np.linalg.norm(low.mean(0) - high.mean(0)) > 10
    # The same band-limited tone recorded at 32 kHz is resampled to 16 kHz and gives the same features.
    resampled = audio.features_from_waveform(tone(300.0, 0.5, rate=32000), 32000, settings)
    assert resampled.shape == low.shape
    np.testing.assert_allclose(resampled[5:-5], low[5:-5], rtol=0.02, atol=0.5)


def test_utterance_normalisation_and_no_frame_looks_like_padding():
    settings = audio.MfccSettings(sample_rate=RATE)
    features = audio.features_from_waveform(np.concatenate([tone(300, 0.3), tone(2000, 0.3)]), RATE, settings)
    np.testing.assert_allclose(features.mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(features.std(0), 1.0, atol=1e-2)
    # Digital silence normalises to all-zero frames, which the mask would take for padding: they must be shifted.
    silent = audio.features_from_waveform(np.zeros(8000, np.float32), RATE, settings)
    assert np.all(np.any(silent != 0.0, axis=1))
    assert np.all(np.any(audio.avoid_padding_frames(np.zeros((3, 4))) != 0.0, axis=1))


def test_bad_feature_settings_are_user_errors():
    with pytest.raises(UserError, match="deltas"):
        audio.MfccSettings(deltas=3)
    with pytest.raises(UserError, match="n_mfcc"):
        audio.MfccSettings(n_mfcc=50, n_mels=40)
    with pytest.raises(UserError, match="normalize"):
        audio.MfccSettings(normalize="global")


def test_feature_cache_computes_once_per_settings_and_data(private_cache):
    calls = []

    def compute():
        calls.append(1)
        return [np.ones((3, 2), np.float32), np.zeros((5, 2), np.float32)]

    first = audio.cached_feature_list("unit", {"settings": 1, "data": "x"}, compute)
    again = audio.cached_feature_list("unit", {"settings": 1, "data": "x"}, compute)
    assert len(calls) == 1 and [m.shape for m in again] == [(3, 2), (5, 2)]
    np.testing.assert_array_equal(again[0], first[0])
    audio.cached_feature_list("unit", {"settings": 2, "data": "x"}, compute)
    assert len(calls) == 2
    assert len(list((private_cache / "features").glob("unit-*.npz"))) == 2
    # A damaged cache file is recomputed rather than trusted.
    for path in (private_cache / "features").glob("unit-*.npz"):
        path.write_bytes(b"not an npz")
    audio.cached_feature_list("unit", {"settings": 1, "data": "x"}, compute)
    assert len(calls) == 3


# ---------------------------------------------------------------------------------------------------------------------
# Labels, decoding, loss, error rates.


def test_vocabulary_round_trips_and_refuses_unknown_symbols():
    chars = ctc.Vocabulary(" AB", unit="char")
    np.testing.assert_array_equal(chars.encode("AB A"), [2, 3, 1, 2])
    assert chars.decode([2, 3, 1, 2, 0, -1]) == "AB A"
    with pytest.raises(KeyError, match="C"):
        chars.encode("AC")
    words = ctc.Vocabulary(["no", "yes"], unit="word")
    np.testing.assert_array_equal(words.encode("yes no  yes"), [2, 1, 2])
    assert words.decode([2, 1]) == "yes no"
    np.testing.assert_array_equal(ctc.pad_labels([np.array([1, 2]), np.array([3])]), [[1, 2], [3, 0]])


def _log_probabilities(rows):
    return np.log(np.asarray(rows, dtype=np.float32))[None]


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    # Columns: blank, A, B. Frames argmax: A A blank A B B -> "A A B" collapses to A, A, B.
    onehot = np.full((6, 3), 0.05, np.float32)
    for frame, label in enumerate([1, 1, 0, 1, 2, 2]):
        onehot[frame, label] = 0.9
    assert ctc.decode_logits(np.log(onehot)[None], "greedy") == [[1, 1, 2]]


def test_beam_search_finds_the_likelier_labelling_that_greedy_misses():
    # Two frames, P(blank) = 0.6 and P(A) = 0.4 in each. Greedy reads blank, blank -> "" (probability 0.36), but
    # "A" has probability 0.4*0.6 + 0.6*0.4 + 0.4*0.4 = 0.64 summed over its three alignments.
    logits = _log_probabilities([[0.6, 0.4], [0.6, 0.4]])
    assert ctc.decode_logits(logits, "greedy") == [[]]
    assert ctc.decode_logits(logits, "beam_search", beam_width=4) == [[1]]


def test_beam_search_returns_the_likelier_labelling_on_noisy_logits():
    from rnnbench.ctc import ctc_loss

    # Noisy frames that are mostly blank: greedy reads one label, but a labelling with more labels can collect more
    # probability over all its alignments. Whatever beam search returns must be at least as likely as greedy's
    # answer (exact CTC probabilities), and shifting the logits (they are not normalised) must change nothing.
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 50, 3)).astype(np.float32)
    logits[:, :, 0] += 3.0
    greedy = ctc.decode_logits(logits, "greedy")[0]
    beam = ctc.decode_logits(logits, "beam_search", beam_width=16)[0]
    assert ctc.decode_logits(logits + 5.0, "beam_search", beam_width=16)[0] == beam

    def log_probability(labels):
        return -float(np.asarray(ctc_loss(ctc.pad_labels([np.array(labels)]), logits))[0])

    assert log_probability(beam) >= log_probability(greedy)


def test_ctc_loss_matches_the_hand_computed_probability():
    from rnnbench.ctc import ctc_loss

    logits = _log_probabilities([[0.6, 0.4], [0.6, 0.4]])
    loss = float(np.asarray(ctc_loss(np.array([[1, 0]]), logits))[0])
    assert loss == pytest.approx(-math.log(0.64), rel=1e-4)


def test_error_rates_on_known_strings():
    assert ctc.cer(["abc"], ["abd"]) == pytest.approx(1 / 3)
    # Corpus level: 1 error over 3 + 2 reference characters.
    assert ctc.cer(["abc", "de"], ["abd", "de"]) == pytest.approx(1 / 5)
    # One substitution and one insertion over three reference words.
    assert ctc.wer(["one two three"], ["one too three four"]) == pytest.approx(2 / 3)
    assert ctc.wer(["yes no"], [""]) == 1.0
    assert ctc.utterance_cer("", "ab") == 2.0
    with pytest.raises(ValueError):
        ctc.cer(["a"], ["a", "b"])


# ---------------------------------------------------------------------------------------------------------------------
# AN4 `.mfc` files.


def test_mfc_reader_round_trips_big_endian_frames(tmp_path):
    frames = np.arange(5 * 13, dtype=np.float32).reshape(5, 13) / 7
    np.testing.assert_array_equal(speech.read_mfc(write_mfc(tmp_path / "u.mfc", frames)), frames)


@pytest.mark.parametrize("content, problem", [
    (b"", "too short"),
    (np.array([26], ">i4").tobytes() + np.zeros(13, ">f4").tobytes(), "announces 26"),
    (np.array([10], ">i4").tobytes() + np.zeros(10, ">f4").tobytes(), "whole frames"),
    (np.array([13], ">i4").tobytes() + np.full(13, np.nan, ">f4").tobytes(), "NaN"),
])
def test_mfc_reader_refuses_damaged_files(tmp_path, content, problem):
    path = tmp_path / "bad.mfc"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as caught:
        speech.read_mfc(path)
    assert str(path) in str(caught.value)


def test_an4_loader_reads_lists_and_holds_out_whole_speakers(tmp_path):
    spec = speech.load(dataset="an4", data_dir=str(make_an4(tmp_path / "an4")), batch_size=4, val_fraction=0.3)
    assert spec.outputs.num_classes == 27 and spec.inputs.feature_dim == 13
    assert spec.dataset["train_utterances"] + spec.dataset["val_utterances"] == 9
    assert spec.dataset["test_utterances"] == 3 and spec.primary_metric == "cer" and spec.monitor == "val_cer"
    # The sentence markers are gone from the labels: decoding every test label row gives plain A-Z text.
    vocabulary = ctc.Vocabulary(speech.AN4_SYMBOLS)
    texts = {vocabulary.decode(row) for _, y in spec.test.as_numpy_iterator() for row in y}
    assert texts <= {"YES", "NO", "GO", "A B C", "ERASE TWO"}


def test_an4_archive_is_unpacked_into_the_cache_not_next_to_the_data(tmp_path, private_cache):
    folder = make_an4(tmp_path / "an4", packed=True)
    before = sorted(p.name for p in folder.iterdir())
    spec = speech.load(dataset="an4", data_dir=str(folder), batch_size=4, deltas=1)
    assert spec.inputs.feature_dim == 26
    assert sorted(p.name for p in folder.iterdir()) == before
    assert list((private_cache / "unpacked").glob("an4_feat_mfc-*/an4/feat/an4_clstk/spka/*.mfc"))


def test_an4_mismatched_lists_and_missing_parts_are_data_errors(tmp_path):
    folder = make_an4(tmp_path / "an4")
    transcription = folder / "etc" / "an4_test.transcription"
    transcription.write_text(transcription.read_text().replace("(an0-spkt-b)", "(an9-other-b)"))
    with pytest.raises(DataError, match="does not match"):
        speech.load(dataset="an4", data_dir=str(folder))
    transcription.write_bytes(b"\xff\xfe YES (an0-spkt-b)\n")
    with pytest.raises(DataError, match="not UTF-8"):
        speech.load(dataset="an4", data_dir=str(folder))
    transcription.unlink()
    with pytest.raises(DataError, match="an4_test.transcription"):
        speech.load(dataset="an4", data_dir=str(folder))
    empty = tmp_path / "empty"
    (empty / "etc").mkdir(parents=True)
    with pytest.raises(DataError, match="an4_feat_mfc.tar.gz"):
        speech.load(dataset="an4", data_dir=str(empty))
    (empty / "an4_feat_mfc.tar.gz").write_bytes(b"this is not a tarball")
    with pytest.raises(DataError, match="cannot unpack"):
        speech.load(dataset="an4", data_dir=str(empty))


def test_an4_refuses_front_end_options_it_cannot_honour(tmp_path):
    with pytest.raises(UserError, match="n_mfcc=20"):
        speech.load(dataset="an4", data_dir=str(tmp_path), n_mfcc=20)


# ---------------------------------------------------------------------------------------------------------------------
# Batching and the synthetic corpus end to end.


def test_batches_are_bucketed_padded_with_zero_and_labelled(tmp_path):
    listing = write_csv_corpus(tmp_path / "corpus", synthetic_rows(18))
    spec = speech.load(dataset="csv", data_file=str(listing), batch_size=4, test_fraction=0.2, val_fraction=0.2)
    # The data seed fixes the shuffling: a second load yields the same first epoch.
    again = speech.load(dataset="csv", data_file=str(listing), batch_size=4, test_fraction=0.2, val_fraction=0.2)
    for (_, y_first), (_, y_again) in zip(spec.train.as_numpy_iterator(), again.train.as_numpy_iterator()):
        np.testing.assert_array_equal(y_first, y_again)
    bounds = spec.notes["bucket_bounds"]
    vocabulary = ctc.Vocabulary("abc")
    seen = 0
    for x, y in spec.train.as_numpy_iterator():
        assert x.shape[1] + 1 in bounds  # padded to the bucket's bound
        real = np.any(x != 0.0, axis=2)
        lengths = real.sum(axis=1)
        # Real frames come first, then only padding: exactly what the model's mask assumes.
        assert all(real[i, :n].all() and not real[i, n:].any() for i, n in enumerate(lengths))
        for row in y:
            labels = np.count_nonzero(row)
            assert (row[:labels] > 0).all() and (row[labels:] == 0).all()  # labels first, then 0 padding
            assert vocabulary.decode(row) in {"ab", "ba", "abc", "cab", "bca", "ca"}
        seen += len(x)
    assert seen == spec.dataset["train_utterances"]
    assert int(spec.train.cardinality()) == sum(1 for _ in spec.train)


def test_tiny_end_to_end_run_on_synthetic_audio(tmp_path):
    listing = write_csv_corpus(tmp_path / "corpus", synthetic_rows(18))
    spec = speech.load(dataset="csv", data_file=str(listing), batch_size=4, beam_width=4)
    assert spec.notes["vocabulary"] == "abc" and spec.primary_metric == "cer"
    assert set(spec.baselines) == {"empty_output", "most_frequent_transcript"}
    assert spec.baselines["empty_output"] == {"cer": 1.0, "wer": 1.0}
    history, test, out = tiny_run(spec, tmp_path)
    assert np.isfinite(history["loss"][0]) and 0.0 <= history["val_cer"][0] and "val_wer" in history
    assert set(test) == {"cer", "wer", "beam_cer", "beam_wer"} and all(np.isfinite(v) for v in test.values())
    with open(out / "decoded_test_examples.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == spec.dataset["test_utterances"] and rows[0]["reference"] in {"ab", "ba", "abc", "cab", "bca",
                                                                                     "ca"}
    assert (out / "test_example_posteriors.png").stat().st_size > 1000


def test_csv_features_are_cached_on_disk(tmp_path, monkeypatch):
    listing = write_csv_corpus(tmp_path / "corpus", synthetic_rows(9))
    speech.load(dataset="csv", data_file=str(listing))
    calls, real_mfcc = [], audio.mfcc
    monkeypatch.setattr(audio, "mfcc", lambda *a, **k: calls.append(1) or real_mfcc(*a, **k))
    speech.load(dataset="csv", data_file=str(listing))
    assert calls == []  # every feature came from the cache
    speech.load(dataset="csv", data_file=str(listing), n_mfcc=20)
    assert len(calls) == 9  # new settings, new features


def test_csv_split_column_is_honoured(tmp_path):
    rows = [(name, text, "test" if i < 4 else "train") for i, (name, text) in enumerate(synthetic_rows(14))]
    listing = write_csv_corpus(tmp_path / "corpus", rows, header=("path", "transcript", "split"))
    spec = speech.load(dataset="csv", data_file=str(listing), val_fraction=0.2)
    assert spec.dataset["test_utterances"] == 4
    assert spec.dataset["train_utterances"] + spec.dataset["val_utterances"] == 10


# ---------------------------------------------------------------------------------------------------------------------
# Bad input: every case names the file and the fix.


def test_csv_bad_inputs_are_data_errors(tmp_path):
    folder = tmp_path / "corpus"
    listing = write_csv_corpus(folder, synthetic_rows(6))
    cases = {
        "empty": (b"", "is empty"),
        "columns": (b"file,text\nutt00.wav,ab\n", "missing column"),
        "latin1": ("path,transcript\nutt00.wav,caf\xe9\n".encode("latin-1"), "not UTF-8"),
        "no_rows": (b"path,transcript\n", "no rows"),
        "blank": (b"path,transcript\nutt00.wav,\n", "empty transcript"),
        "missing_audio": (b"path,transcript\nnowhere.wav,ab\nutt01.wav,ba\nutt02.wav,abc\n", "nowhere.wav"),
        "half_split": (b"path,transcript,split\nutt00.wav,ab,train\nutt01.wav,ba,\n", "empty split"),
        "no_test": (b"path,transcript,split\nutt00.wav,ab,train\nutt01.wav,ba,train\nutt02.wav,ab,train\n",
                    "test split is empty"),
    }
    for name, (content, problem) in cases.items():
        bad = folder / f"{name}.csv"
        bad.write_bytes(content)
        with pytest.raises(DataError, match=problem):
            speech.load(dataset="csv", data_file=str(bad))
    with pytest.raises(DataError, match="absent.csv: transcript CSV not found; check task.data_file"):
        speech.load(dataset="csv", data_file=str(folder / "absent.csv"))
    (folder / "utt01.wav").write_bytes(b"RIFF....WAVEgarbage")
    with pytest.raises(DataError, match="utt01.wav: not a readable audio file"):
        speech.load(dataset="csv", data_file=str(listing))


def test_audio_with_nan_or_no_samples_is_refused(tmp_path):
    nan_file, empty_file = tmp_path / "nan.wav", tmp_path / "empty.wav"
    soundfile.write(nan_file, np.array([0.1, np.nan, 0.2], np.float32), RATE, subtype="FLOAT")
    soundfile.write(empty_file, np.zeros(0, np.float32), RATE, subtype="PCM_16")
    with pytest.raises(DataError, match="NaN"):
        audio.load_audio(nan_file)
    with pytest.raises(DataError, match="no samples"):
        audio.load_audio(empty_file)


def test_yesno_folder_problems_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        speech.load(dataset="yesno", data_dir=str(tmp_path / "absent"))
    (tmp_path / "waves").mkdir()
    with pytest.raises(DataError, match="no .wav files"):
        speech.load(dataset="yesno", data_dir=str(tmp_path / "waves"))
    soundfile.write(tmp_path / "waves" / "hello.wav", tone(300, 0.2), RATE)
    with pytest.raises(DataError, match="hello.wav"):
        speech.load(dataset="yesno", data_dir=str(tmp_path / "waves"))


def test_option_errors_say_what_to_set(tmp_path):
    with pytest.raises(UserError, match="dataset must be one of"):
        speech.load(dataset="timit")
    with pytest.raises(UserError, match="task.data_dir"):
        speech.load(dataset="yesno")
    with pytest.raises(UserError, match="task.data_file"):
        speech.load(dataset="csv")
    with pytest.raises(UserError, match="val_fraction"):
        speech.load(dataset="csv", data_file="x.csv", val_fraction=0.0)


def test_tfds_digits_absent_name_both_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(DataError) as caught:
        speech.load(dataset="digits", download=False)
    assert "TFDS_DATA_DIR" in str(caught.value) and "task.data_dir" in str(caught.value)

    import tensorflow_datasets as tfds

    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'github.com'")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataError, match="could not be downloaded") as caught:
        speech.load(dataset="digits", download=True)
    assert "TFDS_DATA_DIR" in str(caught.value) and "task.data_dir" in str(caught.value)


# ---------------------------------------------------------------------------------------------------------------------
# Connected digits.


def make_fsdd(folder: Path, speakers=("alice", "bob"), indexes=range(8)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for speaker in speakers:
        for digit in range(10):
            for index in indexes:
                soundfile.write(folder / f"{digit}_{speaker}_{index}.wav", tone(200 + 150 * digit, 0.15, 8000), 8000)
    return folder


def test_connected_digits_keep_test_clips_out_of_training(tmp_path):
    clips = speech.read_fsdd_folder(make_fsdd(tmp_path / "fsdd"))
    rng = np.random.default_rng(0)
    test_pool = np.flatnonzero(clips.indexes <= 4)
    train_pool = np.flatnonzero(clips.indexes > 4)
    plans = speech.plan_connected_digits(clips, test_pool, 30, 4, rng, "test")
    used = {c for p in plans for c in p.clips}
    assert used <= set(test_pool.tolist()) and not used & set(train_pool.tolist())
    for p in plans:
        assert 1 <= len(p.clips) <= 4 and len(p.silences) == len(p.clips) + 1
        assert len({str(clips.speakers[c]) for c in p.clips}) == 1  # one speaker per utterance
        waveform = speech.render_digits(clips, p)
        assert len(waveform) == sum(p.silences) + sum(len(clips.waveforms[c]) for c in p.clips)
    # Each speaker's 50 test clips are dealt like a deck: none repeats before all have been used.
    for speaker in ("alice", "bob"):
        drawn = [c for p in plans if p.speaker == speaker for c in p.clips][:50]
        assert len(drawn) == len(set(drawn)) > 0


def test_digits_from_an_fsdd_folder(tmp_path):
    folder = make_fsdd(tmp_path / "fsdd")
    spec = speech.load(dataset="digits", data_dir=str(folder), batch_size=4, train_utterances=12,
                       eval_utterances=6, max_digits=3)
    assert spec.primary_metric == "wer" and spec.monitor == "val_wer" and spec.outputs.num_classes == 10
    assert spec.dataset["name"] == "fsdd" and spec.dataset["test_utterances"] == 6
    vocabulary = ctc.Vocabulary(speech.DIGIT_WORDS, unit="word")
    for _, y in spec.train.as_numpy_iterator():
        for row in y:
            assert 1 <= len(vocabulary.decode(row).split()) <= 3
    # Each digit clip is 0.15 s; an utterance of k clips with silences lasts at least 15k + 8(k-1) frames.
    x, y = spec.example_batch()
    lengths = np.any(x != 0.0, axis=2).sum(axis=1)
    digits = (y > 0).sum(axis=1)
    assert np.all(lengths >= 15 * digits + 8 * (digits - 1))


# ---------------------------------------------------------------------------------------------------------------------
# Real data (skipped where the project's data folder is absent).


def test_yesno_real_files_tiny_end_to_end(shared_data, tmp_path):
    spec = speech.load(dataset="yesno", data_dir=str(shared_data / "yesno" / "waves_yesno"), batch_size=4, limit=4)
    assert spec.notes["vocabulary"] == "no yes" and spec.primary_metric == "wer"
    assert spec.dataset["sha256"] and spec.dataset["train_utterances"] == 4
    x, y = spec.example_batch()
    assert x.shape[2] == 13 and y.shape[1] == 8  # eight words per file
    history, test, out = tiny_run(spec, tmp_path)
    assert np.isfinite(history["loss"][0]) and 0.0 <= test["wer"]


def test_spoken_digit_from_tfds_splits_by_clip_index(tfds_data, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_data))
    clips = speech.read_tfds_spoken_digit(download=False)
    assert len(clips.waveforms) == 3000 and clips.rate == 8000
    assert int(np.sum(clips.indexes <= 4)) == 300  # FSDD's test split: 6 speakers x 10 digits x 5 clips
    spec = speech.load(dataset="digits", batch_size=4, train_utterances=6, eval_utterances=3)
    assert spec.dataset["source"] == "tfds" and spec.dataset["version"] == "1.0.9"


def test_an4_real_archive_reads_every_utterance(shared_data):
    spec = speech.load(dataset="an4", data_dir=str(shared_data / "an4_mfcc"), limit=2)
    assert spec.dataset["test_utterances"] == 2 and spec.notes["vocabulary"] == speech.AN4_SYMBOLS
    # Full reading: 948 train utterances (split into train and validation speakers), 130 test.
    full = speech.load(dataset="an4", data_dir=str(shared_data / "an4_mfcc"))
    assert full.dataset["train_utterances"] + full.dataset["val_utterances"] == 948
    assert full.dataset["test_utterances"] == 130


def test_shuffled_utterances_are_batched_as_a_whole_split_shuffle_batches_them():
    """Slicing shuffled indices out of packed arrays (no buffer refill from Python at each pass) keeps the batches
    of shuffling the utterances themselves, so committed results still reproduce."""
    rng = np.random.default_rng(3)
    vocabulary = ctc.Vocabulary("abc")
    utterances = [speech.Utterance(f"u{i}", rng.normal(size=(int(n), 3)).astype(np.float32),
                                   "".join(rng.choice(list("abc"), size=int(rng.integers(1, 4)))))
                  for i, n in enumerate(rng.integers(4, 30, size=23))]
    bounds, label_length = [10, 20, 31], 3

    def passes(dataset):
        return [[(x.tolist(), y.tolist()) for x, y in dataset.as_numpy_iterator()] for _ in range(2)]

    shuffled = speech.make_dataset(utterances, vocabulary, 4, bounds, label_length, shuffle_seed=5)
    reference = tf.data.Dataset.from_generator(
        lambda: ((u.features, vocabulary.encode(u.transcript)) for u in utterances),
        output_signature=(tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None,), tf.int32)),
    ).shuffle(len(utterances), seed=5, reshuffle_each_iteration=True).bucket_by_sequence_length(
        lambda x, y: tf.shape(x)[0], bounds, [4] * (len(bounds) + 1), padded_shapes=([None, 3], [label_length]),
        padding_values=(0.0, 0), pad_to_bucket_boundary=True)
    got = passes(shuffled)
    assert got == passes(reference) and got[0] != got[1]
    assert int(shuffled.cardinality()) == sum(1 for _ in shuffled)
