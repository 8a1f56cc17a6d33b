"""Tests of the stock task: the CSV cleaning rules, no leakage across splits, baselines with known answers, the hooks
on a tiny model, the report's verdict, and the real S&P 500 file when the development data is present."""
import hashlib
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from rnnbench.errors import DataError, UserError
from rnnbench.tasks import stock
from tiny_data import random_walk, write_prices


def write_text(tmp_path, text, name="prices.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def read(path, **options):
    return stock.read_price_history(path, **options)


# ---------------------------------------------------------------------------------------------------------------------
# Cleaning rules on malformed CSVs.


def test_no_data_file_says_a_file_is_needed():
    with pytest.raises(DataError, match="needs a CSV of daily prices and has no download.*task.data_file"):
        stock.load(data_file=None)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="is a folder"):
        read(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read(write_text(tmp_path, "\n"))


def test_header_without_rows(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        read(write_text(tmp_path, "Date,Close\n"))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("Date,Close,Note\n2020-01-02,10,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text \\(byte 0xe9 at offset 33\\).*re-save it as UTF-8"):
        read(path)


def test_missing_column_lists_the_columns_and_the_option(tmp_path):
    path = write_text(tmp_path, "Date,Price\n2020-01-02,10\n")
    with pytest.raises(DataError, match=r"no column 'Close' \(its columns: 'Date', 'Price'\).*task.price_column"):
        read(path)
    assert read(path, price_column="Price").prices.tolist() == [10.0]


def test_unsorted_dates_are_sorted_with_a_warning_and_counted(tmp_path):
    path = write_text(tmp_path, "Date,Close\n2020-01-03,3\n2020-01-01,1\n2020-01-02,2\n2020-01-06,6\n")
    with pytest.warns(UserWarning, match="1 rows were out of date order"):
        history = read(path)
    assert history.prices.tolist() == [1.0, 2.0, 3.0, 6.0]
    assert np.all(np.diff(history.dates) > np.timedelta64(0))
    assert history.cleaning["rows_out_of_order"] == 1


def test_sorted_file_gives_no_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = read(write_prices(tmp_path, [1.0, 2.0, 3.0]))
    assert history.cleaning["rows_out_of_order"] == 0


def test_duplicate_dates_are_refused_by_default(tmp_path):
    path = write_text(tmp_path, "Date,Close\n2020-01-01,1\n2020-01-02,2\n2020-01-02,5\n2020-01-03,3\n")
    with pytest.raises(DataError, match=r"1 duplicate dates: line 3 \('2020-01-02'\), line 4.*task.duplicates=first"):
        read(path)


@pytest.mark.parametrize("rule, kept", [("first", 2.0), ("last", 5.0)])
def test_duplicate_dates_resolved_by_file_order(tmp_path, rule, kept):
    path = write_text(tmp_path, "Date,Close\n2020-01-02,2\n2020-01-01,1\n2020-01-02,5\n2020-01-03,3\n")
    with pytest.warns(UserWarning):
        history = read(path, duplicates=rule)
    assert history.prices.tolist() == [1.0, kept, 3.0]
    assert history.cleaning["duplicate_rows_dropped"] == 1


def test_unknown_duplicates_rule(tmp_path):
    with pytest.raises(UserError, match="task.duplicates='mean'"):
        read(write_prices(tmp_path, [1.0, 2.0]), duplicates="mean")


@pytest.mark.parametrize("value", ["", "null", "NaN", "abc"])
def test_missing_or_non_numeric_price_names_the_line(tmp_path, value):
    path = write_text(tmp_path, f"Date,Close\n2020-01-01,1\n2020-01-02,{value}\n2020-01-03,3\n")
    with pytest.raises(DataError, match=rf"1 rows have a missing or non-numeric 'Close': line 3 \('{value}'\)"):
        read(path)


@pytest.mark.parametrize("value", ["0", "-4.5"])
def test_non_positive_price_names_the_line(tmp_path, value):
    path = write_text(tmp_path, f"Date,Close\n2020-01-01,1\n2020-01-02,2\n2020-01-03,{value}\n")
    with pytest.raises(DataError, match=rf"'Close' must be positive.*line 4 \('{value}'\)"):
        read(path)


def test_bad_rows_outside_the_date_range_are_ignored(tmp_path):
    path = write_text(tmp_path, "Date,Close\n2020-01-01,0\n2020-01-02,2\n2020-01-03,3\n2020-01-06,nan\n")
    history = read(path, start_date="2020-01-02", end_date="2020-01-03")
    assert history.prices.tolist() == [2.0, 3.0]
    assert history.cleaning["rows_before_start_date"] == 1 and history.cleaning["rows_after_end_date"] == 1
    assert history.cleaning["rows_used"] == 2


def test_negative_feature_is_refused(tmp_path):
    path = write_prices(tmp_path, [1.0, 2.0, 3.0], Volume=[10, -1, 5])
    with pytest.raises(DataError, match=r"'Volume' must not be negative.*line 3"):
        read(path, feature_columns=("Volume",))


def test_several_problems_are_reported_together_each_with_its_lines(tmp_path):
    rows = ["2020-01-01,1", "2020-01-02,nan", "2020-01-03,0", "2020-01-03,3", "2020-01-06,-2", "2020-01-07,",
            "2020-01-08,4", "2020-01-08,5", "2020-01-09,abc"]
    rows += [f"2020-02-{day:02d},0" for day in range(1, 7)]  # 8 zero or negative prices in all: 5 quoted, 3 more
    path = write_text(tmp_path, "Date,Close\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 3 problems: (1) 2 duplicate dates: ")
    assert "line 4 ('2020-01-03'), line 5 ('2020-01-03'), line 8 ('2020-01-08'), line 9 ('2020-01-08')" in message
    assert "(2) 3 rows have a missing or non-numeric 'Close': line 3 ('nan'), line 7 (''), line 10 ('abc')" in message
    assert ("(3) 8 rows where 'Close' must be positive (log returns need it): line 4 ('0'), line 6 ('-2'), "
            "line 11 ('0'), line 12 ('0'), line 13 ('0') and 3 more") in message
    assert message.count("fill or delete") == 1 and "task.duplicates=first" in message  # each part keeps its fix


def test_unreadable_dates_are_reported_with_the_other_problems(tmp_path):
    path = write_text(tmp_path, "Date,Close\n2020-01-01,1\nyesterday,2\n2020-01-03,0\n2020-01-06,3\n")
    with pytest.raises(DataError, match=r"2 problems: \(1\) 1 rows have no readable date in 'Date': line 3 "
                                        r"\('yesterday'\).* \(2\) 1 rows where 'Close' must be positive.*line 4"):
        read(path)


def test_unreadable_date_names_the_line(tmp_path):
    path = write_text(tmp_path, "Date,Close\n2020-01-01,1\nyesterday,2\n")
    with pytest.raises(DataError, match=r"no readable date in 'Date': line 3 \('yesterday'\).*task.date_format"):
        read(path)


def test_date_format_option(tmp_path):
    path = write_text(tmp_path, "Date,Close\n31/01/2020,1\n03/02/2020,2\n")
    history = read(path, date_format="%d/%m/%Y")
    assert [str(d)[:10] for d in history.dates] == ["2020-01-31", "2020-02-03"]


def test_empty_date_range(tmp_path):
    with pytest.raises(DataError, match="no rows between start_date=2030-01-01"):
        read(write_prices(tmp_path, [1.0, 2.0]), start_date="2030-01-01")
    with pytest.raises(UserError, match="task.start_date='soon' is not a date"):
        read(write_prices(tmp_path, [1.0, 2.0]), start_date="soon")


def test_series_too_short_for_the_windows(tmp_path):
    history = read(write_prices(tmp_path, random_walk(40)))
    with pytest.raises(DataError, match="the val split has 6 trading days, too few for input_len=10 \\+ horizon=1"):
        stock.prepare_problem(history, input_len=10)


def test_constant_returns_cannot_be_scaled(tmp_path):
    history = read(write_prices(tmp_path, 100.0 * np.exp(0.001 * np.arange(100))))
    with pytest.raises(DataError, match="'log_return' does not change over the training period"):
        stock.prepare_problem(history, input_len=5)


def test_bad_options_are_user_errors(tmp_path):
    path = write_prices(tmp_path, random_walk(200))
    history = read(path)
    with pytest.raises(UserError, match="task.target='price'"):
        stock.prepare_problem(history, target="price")
    with pytest.raises(UserError, match="task.ma_window=12 reaches past the input window"):
        stock.load(data_file=str(path), input_len=10, ma_window=12)
    with pytest.raises(UserError, match="val_fraction"):
        stock.load(data_file=str(path), val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(UserError, match="task.folds=6 leaves 3 test windows per fold, fewer than 2 \\* horizon = 4"):
        stock.load(data_file=str(path), input_len=10, horizon=2, folds=6)


# ---------------------------------------------------------------------------------------------------------------------
# No leakage.


def test_changing_future_prices_changes_no_earlier_input_or_fitted_value(tmp_path):
    days, changed_from = 400, 350  # day 350 lies in the test period (the last 60 days)
    prices, volume = random_walk(days, seed=1), np.random.default_rng(1).uniform(1000.0, 2000.0, days)
    original = read(write_prices(tmp_path, prices, name="a.csv", Volume=volume), feature_columns=("Volume",))
    prices_b, volume_b = prices.copy(), volume.copy()
    prices_b[changed_from:] *= np.exp(np.linspace(0.0, 0.5, days - changed_from))
    volume_b[changed_from:] *= 7.0
    changed = read(write_prices(tmp_path, prices_b, name="b.csv", Volume=volume_b), feature_columns=("Volume",))

    a = stock.prepare_problem(original, input_len=10, horizon=2)
    b = stock.prepare_problem(changed, input_len=10, horizon=2)
    for split in ("train", "val"):
        for field in ("x", "y", "window_prices", "future_prices"):
            np.testing.assert_array_equal(getattr(getattr(a, split), field), getattr(getattr(b, split), field))
    np.testing.assert_array_equal(a.scale_mean, b.scale_mean)
    np.testing.assert_array_equal(a.scale_std, b.scale_std)
    assert a.train_mean_log_return == b.train_mean_log_return

    # Test window i reads days test_start + i .. test_start + i + 10; those ending before day 350 must be untouched,
    # and so must every baseline's forecast from them (the linear model is fitted on training windows only).
    test_start = days - 1 - int(round(0.15 * (days - 1)))
    untouched = changed_from - 11 - test_start + 1
    assert 0 < untouched < len(a.test)
    np.testing.assert_array_equal(a.test.x[:untouched], b.test.x[:untouched])
    assert not np.array_equal(a.test.x[untouched:], b.test.x[untouched:])
    baselines_a = stock.baseline_prices(a, a.test, ma_window=5)
    baselines_b = stock.baseline_prices(b, b.test, ma_window=5)
    for name in stock.BASELINES:
        np.testing.assert_array_equal(baselines_a[name][:untouched], baselines_b[name][:untouched])


def test_no_window_crosses_a_split_boundary(tmp_path):
    # Prices 1, 2, 3, ... identify their day, so the days every window reads and predicts can be read off.
    prices = np.arange(1.0, 301.0) * (1 + 0.01 * np.sin(np.arange(300)))
    problem = stock.prepare_problem(read(write_prices(tmp_path, prices)), input_len=7, horizon=3)
    day_of = {price: day for day, price in enumerate(prices)}

    def days(array):
        return np.vectorize(day_of.get)(array)

    splits = [problem.train, problem.val, problem.test]
    for earlier, later in zip(splits, splits[1:]):
        # The first return of a later window starts from the earlier split's last day (its base price is past data);
        # every day whose return or price the later window reads or predicts comes after the earlier split's targets.
        assert days(earlier.future_prices).max() < days(later.window_prices[:, 1:]).min()
        assert days(earlier.future_prices).max() == days(later.window_prices[:, 0]).min()
    assert days(problem.test.future_prices).max() == len(prices) - 1


# ---------------------------------------------------------------------------------------------------------------------
# Baselines with known answers.


def test_baselines_on_a_random_walk(tmp_path):
    history = read(write_prices(tmp_path, random_walk(4000, seed=2)))
    problem = stock.prepare_problem(history, input_len=10, val_fraction=0.1, test_fraction=0.3)
    scores = {name: stock.score(problem.test, prices, compare_with_persistence=name != "persistence")
              for name, prices in stock.baseline_prices(problem, problem.test, ma_window=5).items()}
    assert scores["persistence"]["skill"] == 0.0
    assert scores["persistence"]["directional_accuracy"] == 0.5
    assert "dm_pvalue" not in scores["persistence"]
    # Nothing is predictable: fitted and drifting forecasters land within noise of the random walk.
    assert abs(scores["drift"]["skill"]) < 0.005
    assert -0.01 < scores["linear_ar"]["skill"] < 0.002
    assert scores["linear_ar"]["dm_pvalue"] > 0.05
    # The mean of the last k prices lags the walk: its error adds sum_{m<k} (m / k) * increment to the next
    # increment, so RMSE / RMSE(persistence) = sqrt(1 + sum_{m=1}^{k-1} (m / k)^2) = sqrt(2.2) for k = 5.
    assert scores["moving_average"]["skill"] == pytest.approx(1 - math.sqrt(2.2), abs=0.05)
    assert scores["moving_average"]["dm_pvalue"] > 0.999


def test_baselines_on_a_linear_series(tmp_path):
    history = read(write_prices(tmp_path, 100.0 + 0.5 * np.arange(300)))
    problem = stock.prepare_problem(history, target="scaled_price", input_len=6)
    scores = {name: stock.score(problem.test, prices, compare_with_persistence=name != "persistence")
              for name, prices in stock.baseline_prices(problem, problem.test, ma_window=5).items()}
    # Persistence misses by one step (0.5); the 5-day mean lags by two more steps (0.5 + 0.25 * 4 = 1.5).
    assert scores["persistence"]["price_mae"] == pytest.approx(0.5, abs=1e-9)
    assert scores["moving_average"]["price_mae"] == pytest.approx(1.5, abs=1e-9)
    assert scores["moving_average"]["directional_accuracy"] == 0.0
    # A linear series is a linear recurrence: least squares continues it exactly and calls every direction.
    assert scores["linear_ar"]["price_mae"] < 1e-3
    assert scores["linear_ar"]["directional_accuracy"] == 1.0
    assert scores["linear_ar"]["skill"] > 0.99
    assert scores["linear_ar"]["dm_pvalue"] < 1e-6


def test_price_target_and_return_target_share_the_test_windows(tmp_path):
    history = read(write_prices(tmp_path, random_walk(300)))
    returns = stock.prepare_problem(history, target="log_return", input_len=8, horizon=2)
    prices = stock.prepare_problem(history, target="scaled_price", input_len=8, horizon=2)
    np.testing.assert_array_equal(returns.test.future_prices, prices.test.future_prices)
    # Each target's own scaled truth converts back to the actual prices.
    for problem in (returns, prices):
        np.testing.assert_allclose(problem.predicted_prices(problem.test.y, problem.test), problem.test.future_prices,
                                   rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# The loader and its hooks on a tiny model.


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stock")
    rng = np.random.default_rng(5)
    return write_prices(folder, random_walk(260, seed=4), Volume=rng.integers(1000, 2000, 260))


def test_loader_spec(tiny_csv):
    spec = stock.load(data_file=str(tiny_csv), feature_columns="Volume", input_len=8, horizon=2, folds=2,
                      batch_size=16)
    assert (spec.inputs.kind, spec.inputs.feature_dim, spec.inputs.length) == ("features", 2, 8)
    assert (spec.outputs.head, spec.outputs.horizon, spec.outputs.targets) == ("forecast", 2, 1)
    x, y = next(spec.train.as_numpy_iterator())
    assert x.shape == (16, 8, 2) and y.shape == (16, 2, 1)
    assert spec.primary_metric == "skill" and spec.higher_is_better
    assert set(spec.baselines) == set(stock.BASELINES)
    assert spec.baselines["persistence"]["skill"] == 0.0
    assert {"skill", "dm_pvalue", "fold1_skill", "fold2_dm_pvalue"} <= set(spec.baselines["drift"])
    assert spec.dataset["sha256"] == hashlib.sha256(tiny_csv.read_bytes()).hexdigest()
    assert spec.dataset["days"] == 260
    assert spec.dataset["train_windows"] + spec.dataset["val_windows"] + spec.dataset["test_windows"] == 259 - 3 * 9
    assert spec.options["data_file"] == str(tiny_csv) and spec.options["folds"] == 2
    assert spec.notes["cleaning_rows_used"] == 260 and "fold2_target_period" in spec.notes


def test_training_shuffle_follows_the_data_seed(tiny_csv):
    def first_batch(seed):
        spec = stock.load(data_file=str(tiny_csv), input_len=8, batch_size=16, seed=seed)
        return next(spec.train.as_numpy_iterator())[0]

    np.testing.assert_array_equal(first_batch(0), first_batch(0))
    assert not np.array_equal(first_batch(0), first_batch(1))


def test_hooks_on_a_tiny_model(tiny_csv, tmp_path):
    import keras

    from rnnbench.models import compile_model, gru

    keras.utils.set_random_seed(0)
    spec = stock.load(data_file=str(tiny_csv), feature_columns="Volume", input_len=8, horizon=2, folds=2,
                      batch_size=32)
    model = compile_model(gru(spec, units=4), spec)
    history = model.fit(spec.train, validation_data=spec.val, epochs=1, verbose=0, shuffle=False,
                        callbacks=spec.callbacks())
    assert np.isfinite(history.history["val_skill"][0])

    metrics = spec.evaluate(model)
    expected = {"rmse", "mae", "price_rmse", "price_mae", "price_mape", "directional_accuracy", "skill", "dm_stat",
                "dm_pvalue", "fold1_skill", "fold1_dm_pvalue", "fold2_skill", "fold2_dm_pvalue"}
    assert set(metrics) == expected
    # The DM test is undefined (NaN, by design) when the loss-difference variance estimate is not positive, which a
    # one-epoch model on 400 days can produce; every other metric must be finite.
    assert all(np.isfinite(v) for k, v in metrics.items() if "dm_" not in k)
    assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k.endswith("dm_pvalue") and np.isfinite(v))
    assert set(metrics) - {"dm_stat"} - {k for k in metrics if k.startswith("fold")} <= set(spec.baselines["drift"])

    spec.artifacts(model, tmp_path)
    for name in ("forecast_vs_actual.png", "residuals.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    predictions = pd.read_csv(tmp_path / "test_predictions.csv")
    assert len(predictions) == spec.dataset["test_windows"]
    assert list(predictions.columns[-2:]) == ["actual_price_step2", "predicted_price_step2"]
    by_fold = pd.read_csv(tmp_path / "metrics_by_fold.csv")
    assert set(by_fold["forecaster"]) == {model.name, *stock.BASELINES}
    assert set(by_fold["fold"].astype(str)) == {"pooled", "1", "2"}


# ---------------------------------------------------------------------------------------------------------------------
# The report's verdict.


def summary_of(rows):
    return pd.DataFrame([{"model": m, "kind": k, "test_skill_mean": s, "test_skill_ci95": 0.001,
                          "test_dm_pvalue_mean": p, "runs": 3} for m, k, s, p in rows])


def test_report_notes_say_no_when_nothing_is_significant():
    notes = stock.report_notes(summary_of([("lstm", "model", 0.002, 0.2), ("gru", "model", -0.01, 0.9),
                                           ("persistence", "baseline", 0.0, float("nan"))]))
    assert "**No: no recurrent model beats persistence" in notes
    assert "| lstm | 0.0020 ± 0.0010 | 0.200 | 3 | better on average, not significant |" in notes
    assert "persistence 0.0000 ± 0.0010." in notes


def test_report_notes_say_yes_for_a_significant_model():
    notes = stock.report_notes(summary_of([("lstm", "model", 0.02, 0.001), ("gru", "model", -0.01, 0.9)]))
    assert "**Yes: lstm beats persistence" in notes


def test_report_notes_correct_for_the_number_of_models():
    # p = 0.03 clears 0.05 but not 0.05 / 3.
    notes = stock.report_notes(summary_of([("lstm", "model", 0.02, 0.03), ("gru", "model", 0.01, 0.5),
                                           ("bi_gru", "model", 0.0, 0.6)]))
    assert "**No:" in notes and "0.05 / 3 models = 0.0167" in notes


def test_report_notes_without_results():
    assert "Cannot say" in stock.report_notes(pd.DataFrame({"model": ["x"], "kind": ["model"]}))


# ---------------------------------------------------------------------------------------------------------------------
# The real S&P 500 file.


def test_real_sp500_file(shared_data):
    path = shared_data / "stocks" / "sp500_GSPC_daily_1927_2023.csv"
    history = read(path)
    assert history.sha256 == "baf4e47ab3d5f1328ab22772a836f3579af810d861a95742fd472f33ba180a7c"
    assert len(history.prices) == 24114
    assert (str(history.dates[0])[:10], str(history.dates[-1])[:10]) == ("1927-12-30", "2023-12-28")
    assert history.cleaning == {"rows_read": 24114, "rows_out_of_order": 0, "duplicate_rows_dropped": 0,
                                "rows_before_start_date": 0, "rows_after_end_date": 0, "rows_used": 24114}
    crash = np.flatnonzero(history.dates == np.datetime64("1987-10-19"))[0]
    assert math.log(history.prices[crash] / history.prices[crash - 1]) == pytest.approx(math.log(1 - 0.205), abs=0.01)
    # Open is 0.0 from 1962 to 1982-04-19 (PROVENANCE.md): as the price column those rows are refused, by line.
    with pytest.raises(DataError, match=r"5075 rows where 'Open' must be positive"):
        read(path, price_column="Open")
    assert len(read(path, price_column="Open", start_date="1983-01-01").prices) > 10_000
