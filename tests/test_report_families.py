"""Model families on the leaderboards: every registered model has one, the summary carries it, and the README sets the
best recurrent model against the best alternative with a verdict read from the 95% intervals."""
import pandas as pd
import pytest

from rnnbench import registry, report


def test_every_registered_model_has_a_family_and_the_alternatives_are_the_non_recurrent_ones():
    families = {name: registry.model_family(name) for name in registry.list_models()}
    assert set(families.values()) <= set(registry.MODEL_FAMILIES)
    alternatives = ("transformer", "esn", "tcn", "seq2seq_transformer")
    assert {families[m] for m in alternatives} == set(registry.ALTERNATIVE_FAMILIES)
    assert all(families[m] == "recurrent" for m in families if m not in alternatives)
    with pytest.raises(registry.UnknownNameError, match="known models"):
        registry.model_family("mamba")
    with pytest.raises(ValueError, match="not one of"):
        registry.register_model("x", family="quantum")


def _per_run(values: dict) -> pd.DataFrame:
    rows = []
    for model, scores in values.items():
        kind = "baseline" if model == "tfidf" else "model"
        for seed, score in enumerate(scores):
            rows.append({"run_id": f"{model}{seed}", "model": model, "kind": kind, "seed": str(seed),
                         "test_accuracy": score, "params": 1000.0, "sec_per_epoch": 2.0, "diverged_reason": ""})
    return pd.DataFrame(rows)


def test_the_summary_names_each_family_and_a_retired_model_is_unregistered():
    summary = report.summarize(_per_run({"lstm": [0.8, 0.81], "tcn": [0.7, 0.71], "tfidf": [0.75],
                                         "old_cell": [0.6, 0.6]}), "accuracy", True)
    assert list(summary.columns[:3]) == ["model", "kind", "family"]
    assert dict(zip(summary["model"], summary["family"])) == {
        "lstm": "recurrent", "tfidf": "baseline", "tcn": "convolutional", "old_cell": "unregistered"}


@pytest.mark.parametrize("scores,verdict", [
    ({"gru": [0.80, 0.81, 0.82], "transformer": [0.70, 0.71, 0.72]}, "gru is better and the 95% intervals do not"),
    ({"gru": [0.70, 0.80, 0.75], "esn": [0.76, 0.74, 0.78]}, "esn is ahead on average, but the 95% intervals overlap"),
])
def test_the_readme_compares_the_best_recurrent_model_with_the_best_alternative(scores, verdict):
    summary = report.summarize(_per_run({**scores, "lstm": [0.5, 0.5, 0.5]}), "accuracy", True)
    best_recurrent, best_other = report.best_of_families(summary)
    assert best_recurrent["model"] == "gru" and best_other["model"] == next(m for m in scores if m != "gru")
    text = "\n".join(report.recurrence_against_alternatives(summary, "accuracy", True))
    assert "## Recurrence against the alternatives" in text
    assert f"| best recurrent | gru (recurrent) |" in text and verdict in text


def test_no_comparison_without_both_sides():
    summary = report.summarize(_per_run({"gru": [0.8, 0.7], "lstm": [0.6, 0.7]}), "accuracy", True)
    assert report.recurrence_against_alternatives(summary, "accuracy", True) == []


def test_the_readme_results_table_is_the_one_the_committed_reports_give():
    from pathlib import Path

    from rnnbench import results_index

    root = Path(__file__).resolve().parents[1]
    assert results_index.main(["--check", "--results", str(root / "results"), "--readme", str(root / "README.md")]) == 0


def test_the_results_table_rows_name_the_best_of_each_side(tmp_path):
    from rnnbench import results_index

    folder = tmp_path / "results" / "toy"
    folder.mkdir(parents=True)
    summary = report.summarize(_per_run({"gru": [0.80, 0.82], "tcn": [0.85, 0.86], "tfidf": [0.75]}), "accuracy",
                               True)
    summary.to_csv(folder / "summary.csv", index=False)
    (folder / "README.md").write_text("Ranked by test accuracy (higher is better); configuration `abc123`.\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results_index.START}\nold\n{results_index.END}\nrest\n")
    assert results_index.main(["--check", "--results", str(tmp_path / "results"), "--readme", str(readme)]) == 1
    assert results_index.main(["--results", str(tmp_path / "results"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| toy | test accuracy ↑ | gru 0.81 ± 0.13 (2 seeds) | tcn 0.855 ± 0.064 (2 seeds) | tfidf 0.75 |" in text
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old" not in text
