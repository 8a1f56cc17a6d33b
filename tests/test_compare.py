"""`rnnbench compare`: an experiment's report against its control's, with differences checked by hand."""
import math

import pandas as pd
import pytest

from rnnbench import cli, compare


def _report(folder, rows):
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)


@pytest.fixture
def reports(tmp_path):
    _report(tmp_path / "arm", [
        {"run_id": f"a{s}", "model": "lstm", "kind": "model", "seed": s, "test_bpc": v, "best_val_bpc": v - 0.1,
         "epochs_run": 6} for s, v in enumerate([2.0, 2.2, 2.4])] + [
        {"run_id": "b", "model": "trigram", "kind": "baseline", "seed": None, "test_bpc": 3.0}])
    _report(tmp_path / "control", [
        {"run_id": f"c{s}", "model": "lstm", "kind": "model", "seed": s, "test_bpc": v, "best_val_bpc": v - 0.1,
         "epochs_run": 6} for s, v in enumerate([2.1, 2.4, 2.5])] + [
        {"run_id": f"g{s}", "model": "gru", "kind": "model", "seed": s, "test_bpc": 2.0, "best_val_bpc": 1.9,
         "epochs_run": 6} for s in range(3)])
    return tmp_path


def test_differences_match_a_hand_computation(reports):
    runs = pd.read_csv(reports / "arm" / "runs.csv"), pd.read_csv(reports / "control" / "runs.csv")
    arm, control = (r[(r["model"] == "lstm")] for r in runs)
    d = compare.difference(arm, control, "test_bpc")
    assert d["mean_a"] == pytest.approx(2.2) and d["mean_b"] == pytest.approx(2.3333333)
    assert d["diff"] == pytest.approx(-0.1333333)
    # Paired by seed: -0.1, -0.2, -0.1 -> mean -0.1333, sd 0.057735, t(0.975, 2) = 4.3027
    assert d["paired_diff"] == pytest.approx(-0.1333333) and d["pairs"] == 3
    assert d["paired_ci95"] == pytest.approx(4.302653 * 0.057735 / math.sqrt(3), rel=1e-4)
    # Welch: both variances 0.04 and 0.0433; the pairing is far tighter than the unpaired interval.
    assert d["diff_ci95"] > 3 * d["paired_ci95"] and 0.4 < d["p"] < 0.6


def test_the_command_writes_the_table_beside_the_report(reports, capsys):
    assert cli.main(["compare", "--task", "arm", "--against", "control", "--results-dir", str(reports)]) == 0
    text = (reports / "arm" / "against_control.md").read_text()
    assert "| lstm | test_bpc | 2.2 | 2.333 | -0.1333 ± " in text and "(3 seeds)" in text
    assert "| lstm | best_val_bpc |" in text
    assert "gru" not in text.split("\n\n")[2] and "trigram" not in text  # only models both ran, no baselines
    assert "epochs_run 6 / 6" in text


def test_clear_errors(reports, capsys):
    assert cli.main(["compare", "--task", "arm", "--against", "nowhere", "--results-dir", str(reports)]) == 2
    assert "no report at" in capsys.readouterr().err
    assert cli.main(["compare", "--task", "arm", "--against", "control", "--results-dir", str(reports),
                     "--metrics", "test_wer"]) == 2
    err = capsys.readouterr().err
    assert "test_wer" in err and "shared: test_bpc, best_val_bpc" in err


def test_a_declared_control_is_compared_whenever_either_report_is_rewritten(reports, monkeypatch):
    from rnnbench import config, report

    assert config.controls()["char_lm_tbptt"] == "char_lm_tbptt_zero"  # the shipped experiment declares its control
    monkeypatch.setattr(config, "controls", lambda: {"arm": "control"})
    report._refresh_comparisons("control", reports / "control", echo=lambda line: None)
    assert "| lstm | test_bpc |" in (reports / "arm" / "against_control.md").read_text()
    (reports / "arm" / "against_control.md").unlink()
    report._refresh_comparisons("control", reports / "control_smoke", echo=lambda line: None)  # not a reference name
    assert not (reports / "arm" / "against_control.md").exists()
    assert cli.main(["compare", "--task", "arm", "--results-dir", str(reports)]) == 0  # --against from CONTROL
    assert (reports / "arm" / "against_control.md").is_file()
