"""Tests of char_lm's carried state (task.state=carried, truncated BPTT): the stream layout, the order that is never
shuffled, batches of exactly B, stateful models carrying and resetting their state, the resets around training
passes and evaluations, the refusals, and generation from a stateful model. Tiny text, tiny models."""
import numpy as np
import keras
import pytest

from rnnbench.errors import DataError, UserError
from rnnbench.models import IncompatibleModelError, compile_model
from rnnbench.state import is_stateful, reset_states, state_variables, stateful_twin
from rnnbench.registry import get_model
from rnnbench.streaming import training_stream
from rnnbench.tasks import char_lm
from rnnbench.tasks.char_lm import CharVocab
from tiny_data import tiny_text

B, T = 4, 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("tbptt") / "corpus.txt"
    path.write_text(tiny_text(lines=200), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec(corpus):
    return char_lm.load(batch_size=B, data_file=str(corpus), seq_len=T, state="carried")


def batches(dataset):
    return [(x, y) for x, y in dataset.as_numpy_iterator()]


def lstm(spec, **options):
    return get_model("lstm")(spec, units=6, embedding_dim=4, **options)


def state_sum(model) -> float:
    return float(sum(np.abs(keras.ops.convert_to_numpy(v)).sum() for v in state_variables(model)))


# -- layout ----------------------------------------------------------------------------------------------------------

def test_streams_are_contiguous_and_batch_k_plus_1_continues_batch_k():
    ids = np.arange(100, dtype=np.int32)  # id = position, so every window says where it came from
    x, y = char_lm.make_streams(ids, seq_len=3, streams=4)
    # (100 - 1) // (4 * 3) = 8 windows per stream: streams of 24 characters starting at 0, 24, 48, 72.
    assert x.shape == (32, 3)
    np.testing.assert_array_equal(y, x + 1)
    for k in range(8):
        for i in range(4):
            assert x[k * 4 + i].tolist() == [24 * i + 3 * k + j for j in range(3)]
    for k in range(7):
        np.testing.assert_array_equal(x[(k + 1) * 4:(k + 2) * 4, 0], x[k * 4:(k + 1) * 4, -1] + 1)
    with pytest.raises(DataError, match="cannot fill one batch of 4 streams x 30 characters"):
        char_lm.make_streams(ids, seq_len=30, streams=4, where="tiny")


def test_carried_task_batches_are_exactly_b_and_each_row_reads_one_stream_of_the_text(spec, corpus):
    text = corpus.read_text(encoding="utf-8")
    train_text = char_lm.split_by_position(text)["train"]
    vocab = CharVocab.from_text(train_text, T)
    assert spec.inputs.streams == B and spec.notes["streams"] == B and spec.options["state"] == "carried"
    for split in (spec.train, spec.val, spec.test):
        assert all(len(x) == B for x, _ in batches(split))
    train = batches(spec.train)
    streams = ["".join(vocab.decode(x[i]) for x, _ in train) for i in range(B)]
    # The streams tile the start of the training text in order; the rest (under B * T + 1 characters) is dropped.
    assert "".join(streams) == train_text[:len(streams) * len(streams[0])]
    assert len(train_text) - len("".join(streams)) < B * T + 1
    for x, y in train:
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])


def test_carried_training_order_is_never_shuffled(spec, corpus):
    in_order = batches(spec.train)
    for run_seed in (0, 1):
        stream, steps, per_pass = training_stream(spec, run_seed)
        assert steps == per_pass == len(in_order)
        two_passes = list(stream.take(2 * per_pass).as_numpy_iterator())
        for index, (x, y) in enumerate(two_passes):
            np.testing.assert_array_equal(x, in_order[index % per_pass][0])
            np.testing.assert_array_equal(y, in_order[index % per_pass][1])
    other_seed = char_lm.load(batch_size=B, data_file=str(corpus), seq_len=T, state="carried", seed=5)
    np.testing.assert_array_equal(batches(other_seed.train)[0][0], in_order[0][0])


def test_zero_state_is_the_default_and_unchanged(corpus):
    zero = char_lm.load(batch_size=B, data_file=str(corpus), seq_len=T)
    assert zero.options["state"] == "zero" and zero.inputs.streams is None and zero.callbacks is None
    assert "streams" not in zero.notes
    assert not is_stateful(lstm(zero))


def test_carried_options_that_cannot_work_are_refused(corpus):
    with pytest.raises(UserError, match="train_stride=4 cannot be used with task.state=carried"):
        char_lm.load(batch_size=B, data_file=str(corpus), seq_len=T, state="carried", train_stride=4)
    with pytest.raises(UserError, match="state"):
        char_lm.load(batch_size=B, data_file=str(corpus), seq_len=T, state="sometimes")
    with pytest.raises(DataError, match="validation|val part"):
        char_lm.load(batch_size=64, data_file=str(corpus), seq_len=T, state="carried")


# -- models ----------------------------------------------------------------------------------------------------------

def test_stateful_output_depends_on_the_batch_before_until_reset(spec):
    model = lstm(spec)
    assert is_stateful(model) and model.inputs[0].shape == (B, T)
    (first, _), (second, _) = batches(spec.train)[:2]
    reset_states(model)
    fresh = model.predict_on_batch(second)
    reset_states(model)
    model.predict_on_batch(first)
    assert state_sum(model) > 0
    after_first = model.predict_on_batch(second)
    assert np.abs(after_first - fresh).max() > 1e-4  # batch k + 1 starts from the state batch k left
    reset_states(model)
    assert state_sum(model) == 0
    np.testing.assert_allclose(model.predict_on_batch(second), fresh, atol=1e-6)


def test_bidirectional_and_attention_models_are_refused_with_the_way_out(spec, corpus):
    for name, remedy in (("bi_lstm", "Use simple_rnn, lstm or gru"), ("lstm_attention", "task.state=zero"),
                         ("gru_attention", "model.stateful=false")):
        with pytest.raises(IncompatibleModelError, match=remedy):
            get_model(name)(spec, units=6)
    zero = char_lm.load(batch_size=B, data_file=str(corpus), seq_len=T)
    with pytest.raises(IncompatibleModelError, match="task.state=carried"):
        lstm(zero, stateful=True)
    # Asked for explicitly, a carried-state task still trains a zero-state model (an ablation on the same batches).
    assert not is_stateful(lstm(spec, stateful=False))
    assert not is_stateful(get_model("gru_attention")(spec, units=6, stateful=False))


# -- resets ----------------------------------------------------------------------------------------------------------

class Probe(keras.callbacks.Callback):
    """Records the carried state's size at the hooks around the resets."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append(("batch", batch, state_sum(self.model)))

    def on_test_begin(self, logs=None):
        self.seen.append(("test_begin", None, state_sum(self.model)))

    def on_test_batch_end(self, batch, logs=None):
        self.seen.append(("test_batch", batch, state_sum(self.model)))

    def on_test_end(self, logs=None):
        self.seen.append(("test_end", None, state_sum(self.model)))


def test_state_is_reset_at_every_pass_and_around_every_evaluation(spec):
    keras.utils.set_random_seed(0)
    model = compile_model(lstm(spec), spec, learning_rate=1e-2, jit_compile=False)
    before, after = Probe(), Probe()
    stream, steps, _ = training_stream(spec, 0)
    fitted = model.fit(stream, validation_data=spec.val, epochs=2, steps_per_epoch=steps, verbose=0, shuffle=False,
                       callbacks=[before, *spec.callbacks(), after]).history
    # Behind the reset callback: every pass starts at zero and validation starts at zero, then carries its state.
    passes = [size for kind, batch, size in after.seen if kind == "batch" and batch == 0]
    assert passes == [0.0, 0.0]
    assert [size for kind, _, size in after.seen if kind == "test_begin"] == [0.0, 0.0]
    assert all(size > 0 for kind, _, size in after.seen if kind == "test_batch")
    # In front of it: training had left a state behind when each epoch ended (so the resets did something).
    assert [size > 0 for kind, _, size in before.seen if kind == "test_begin"] == [True, True]
    assert state_sum(model) == 0  # after training, so the runner's test evaluation that follows starts from zero
    test = model.evaluate(spec.test, verbose=0, return_dict=True)  # as the runner calls it, without callbacks
    assert state_sum(model) > 0
    exact = spec.evaluate(model)  # the task's hook zeroes the state before and after its own pass
    assert state_sum(model) == 0
    np.testing.assert_allclose(exact["loss"], test["loss"], rtol=1e-4)
    validation = model.evaluate(spec.val, verbose=0, return_dict=True)
    np.testing.assert_allclose(validation["loss"], fitted["val_loss"][-1], rtol=1e-5)  # it started from zero


def test_a_validation_inside_a_pass_puts_the_training_state_back(spec):
    keras.utils.set_random_seed(0)
    model = compile_model(lstm(spec), spec, jit_compile=False)
    before, after = Probe(), Probe()
    stream, steps, per_pass = training_stream(spec, 0, validations_per_epoch=2)
    resets = spec.callbacks()
    model.fit(stream, validation_data=spec.val, epochs=2, steps_per_epoch=steps, verbose=0, shuffle=False,
              callbacks=[before, *resets, after])
    kept = [size for kind, _, size in before.seen if kind == "test_begin"][0]
    epoch_two = [size for kind, batch, size in after.seen if kind == "batch"][steps]
    assert kept > 0 and epoch_two == pytest.approx(kept, rel=1e-5)  # the stream went on where it stopped
    assert resets[0].batches_per_pass == per_pass


# -- generation ------------------------------------------------------------------------------------------------------

def test_generation_and_prediction_read_a_stateful_model_through_a_batch_1_twin(spec, corpus, tmp_path,
                                                                               monkeypatch):
    from rnnbench import tracking
    from rnnbench.tasks.char_lm.predict import next_char_probabilities, predict_from_run

    model = lstm(spec)
    text = corpus.read_text(encoding="utf-8")
    vocab = CharVocab.from_text(char_lm.split_by_position(text)["train"], T)
    (first, _), (second, _) = batches(spec.train)[:2]
    reset_states(model)
    model.predict_on_batch(first)
    carried = np.asarray(model.predict_on_batch(second))[0, -1]
    held = state_sum(model)
    twin = stateful_twin(model, batch_size=1)
    reset_states(twin)
    np.testing.assert_allclose(twin.predict_on_batch(np.concatenate([first[:1], second[:1]], axis=1))[0, -1],
                               carried, atol=1e-5)  # two windows of one stream, read in one go from zero
    prompt = vocab.decode(np.concatenate([first[0], second[0]]))
    probabilities = next_char_probabilities(model, vocab, prompt)
    expected = np.exp(carried - carried.max())
    np.testing.assert_allclose(probabilities, expected / expected.sum(), atol=1e-5)
    sample = char_lm.generate(model, vocab, prompt, 20, temperature=0.8, seed=1)
    assert sample.startswith(prompt) and len(sample) == len(prompt) + 20
    assert char_lm.generate(model, vocab, prompt, 20, temperature=0.8, seed=1) == sample
    assert state_sum(model) == pytest.approx(held)  # the twin's state is its own

    # As `rnnbench generate` / `rnnbench predict` see it: the model saved and loaded back, batch size fixed.
    model.save(tmp_path / "model.keras")
    vocab.save(tmp_path / "vocab.json")
    monkeypatch.setattr(tracking, "download_artifact", lambda run_id, path: tmp_path / "vocab.json")
    monkeypatch.setattr(tracking, "load_model", lambda run_id: keras.saving.load_model(tmp_path / "model.keras"))
    assert char_lm.generate_from_run("run1", prompt, 20, 0.8, seed=1) == sample
    lines = predict_from_run("run1", ["to be "])
    assert lines[0] == "prompt 'to be '" and lines[-1].startswith("  greedy continuation: ")
