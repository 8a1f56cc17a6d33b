"""The stock task's section of the generic report: does any recurrent model beat persistence, significantly?

Registered as the task's `report_notes` hook, so `rnnbench report --task stock` adds it below the leaderboard.
"""
from __future__ import annotations

from typing import Optional

import pandas as pd

SIGNIFICANCE_LEVEL = 0.05


def _summary_column(summary: pd.DataFrame, metric: str, statistic: str) -> Optional[str]:
    """The report names test metrics `test_<metric>_<statistic>`; a bare `<metric>_<statistic>` is accepted too."""
    for column in (f"test_{metric}_{statistic}", f"{metric}_{statistic}"):
        if column in summary.columns:
            return column
    return None


def report_notes(summary: pd.DataFrame) -> str:
    """Markdown stating plainly whether any recurrent model beats persistence with statistical significance.

    `summary` has one row per model or baseline: model, kind ('model' / 'baseline'), test_<metric>_mean / _std / _ci95,
    params, runs. A model counts as beating persistence when its mean skill is positive and its one-sided
    Diebold-Mariano p-value, averaged over seeds, is below 0.05 / (number of models): a Bonferroni correction, because
    among many models one clears 0.05 by luck alone.
    """
    skill_column = _summary_column(summary, "skill", "mean")
    pvalue_column = _summary_column(summary, "dm_pvalue", "mean")
    models = summary[summary["kind"] == "model"] if "kind" in summary.columns else summary.iloc[0:0]
    if models.empty or skill_column is None or pvalue_column is None:
        return ("### Does any recurrent model beat persistence?\n\nCannot say: the summary has no recurrent model "
                "with `skill` and `dm_pvalue` results.")
    threshold = SIGNIFICANCE_LEVEL / len(models)

    def cell(row, metric, digits):
        mean_column, ci_column = _summary_column(summary, metric, "mean"), _summary_column(summary, metric, "ci95")
        mean = row[mean_column] if mean_column else float("nan")
        if pd.isna(mean):
            return "n/a"
        ci = row[ci_column] if ci_column else float("nan")
        return f"{mean:.{digits}f}" + ("" if pd.isna(ci) or ci == 0 else f" ± {ci:.{digits}f}")

    winners, lines = [], []
    for _, row in models.sort_values(skill_column, ascending=False).iterrows():
        p, s = row[pvalue_column], row[skill_column]
        if pd.notna(p) and pd.notna(s) and p < threshold and s > 0:
            winners.append(row["model"])
            verdict = "**beats persistence**"
        elif pd.notna(s) and s <= 0:
            verdict = "no better than persistence"
        else:
            verdict = "better on average, not significant"
        runs = int(row["runs"]) if "runs" in row.index and pd.notna(row["runs"]) else "?"
        lines.append(f"| {row['model']} | {cell(row, 'skill', 4)} | {cell(row, 'dm_pvalue', 3)} | {runs} | {verdict} |")

    if winners:
        answer = (f"**Yes: {', '.join(winners)} beat{'s' if len(winners) == 1 else ''} persistence with statistical "
                  "significance.** Before believing it, check that the skill holds in every test fold and across "
                  "seeds (the ± columns): daily returns are close to unpredictable, and published evaluations mostly "
                  "find that machine-learning forecasters do not beat simple benchmarks (Makridakis, Spiliotis and "
                  "Assimakopoulos 2018).")
    else:
        answer = ("**No: no recurrent model beats persistence (the random walk) with statistical significance.** "
                  "This is the usual finding: published evaluations mostly find that machine-learning forecasters do "
                  "not beat simple statistical benchmarks (Makridakis, Spiliotis and Assimakopoulos 2018), and daily "
                  "returns are close to unpredictable.")
    text = [
        "### Does any recurrent model beat persistence?",
        "",
        answer,
        "",
        "Test: one-sided Diebold-Mariano test of squared daily log-return errors against persistence (Harvey-Leybourne-"
        f"Newbold correction), p-value averaged over seeds, significance level {SIGNIFICANCE_LEVEL} / {len(models)} "
        f"models = {threshold:.4f} (Bonferroni). Skill = 1 - RMSE / RMSE(persistence) on daily log returns.",
        "",
        "| model | skill | DM p-value | runs | verdict |",
        "| --- | --- | --- | --- | --- |",
        *lines,
    ]
    baselines = summary[summary["kind"] == "baseline"]
    if not baselines.empty:
        described = []
        for _, row in baselines.iterrows():
            p = row[pvalue_column]
            described.append(f"{row['model']} {cell(row, 'skill', 4)}" + ("" if pd.isna(p) else f" (p = {p:.3f})"))
        text += ["", "Baselines' skill (deterministic, one run each): " + "; ".join(described) + "."]
    return "\n".join(text)

