"""The char_lm task's section of the generic report: every model's loss on nanoGPT's footing, beside nanoGPT's own.

Registered as the task's `report_notes` hook, so `rnnbench report --task char_lm` adds it below the leaderboard.

nanoGPT's shakespeare_char validation split is the last 10% of the same 1,115,394-character text, which is exactly
tensorflow-datasets' validation and test splits together (55,770 characters each). Its figure is the mean loss per
character in nats over that part, so ours on the same footing is the mean of the best-validation loss and the test
loss, weighted by characters: with the two splits of equal size, their plain mean.
"""
from __future__ import annotations

import math

import pandas as pd

# Published nanoGPT figures (its README): validation loss in nats per character on shakespeare_char.
NANOGPT = (
    ("nanoGPT GPU config (6 layers, 6 heads, 384 wide, 10.65M parameters, 256-character context, dropout 0.2, "
     "5,000 iterations on an A100)", 1.4697),
    ("nanoGPT CPU config (4 layers, 4 heads, 128 wide, 64-character context, no dropout, 2,000 iterations)", 1.88),
)


def report_notes(summary: pd.DataFrame) -> str:
    """Markdown: per model the character-weighted mean of best validation and test loss (nats/char), ranked, with
    the nanoGPT figures beside them and how the settings differ."""
    needed = ("best_val_loss_mean", "test_loss_mean")
    models = summary[summary["kind"] == "model"] if "kind" in summary.columns else summary.iloc[0:0]
    lines = ["### On nanoGPT's footing", ""]
    if models.empty or any(column not in summary.columns for column in needed):
        return "\n".join(lines + ["Cannot say: the summary has no model with best_val_loss and test_loss."])
    rows = []
    for row in models.itertuples():
        footing = (getattr(row, "best_val_loss_mean") + getattr(row, "test_loss_mean")) / 2
        if not math.isnan(footing):
            rows.append((footing, row.model, int(row.params) if not math.isnan(row.params) else None, row.runs))
    rows.sort()
    lines += ["nanoGPT's validation split is the last 10% of the text: tensorflow-datasets' validation and test "
              "splits together, so the mean of our best-validation and test loss per character (nats, equal "
              "weights: the splits are the same size) is on its footing. Differences that remain: every "
              "character of our splits is scored once, in windows of task.seq_len characters (from a zero state "
              "at each window's start unless task.state=carried), where nanoGPT averages 200 random batches of "
              "block-size windows; and the model sizes and training budgets (see the leaderboard above and the "
              "experiment file) are far below nanoGPT's GPU configuration.", "",
              "| model or reference | nats/char (mean of val and test) | bits/char | params | runs |",
              "| --- | --- | --- | --- | --- |"]
    for footing, model, params, runs in rows:
        lines.append(f"| {model} | {footing:.4f} | {footing / math.log(2):.3f} | "
                     f"{'' if params is None else f'{params:,}'} | {runs} |")
    for label, value in NANOGPT:
        lines.append(f"| {label} | {value:.4f} | {value / math.log(2):.3f} | | published |")
    if rows:
        best, model = rows[0][0], rows[0][1]
        lines += ["", f"Best here: {model} at {best:.4f} nats/char, {best - NANOGPT[0][1]:+.4f} from nanoGPT's "
                      f"GPU figure and {best - NANOGPT[1][1]:+.4f} from its CPU configuration's."]
    return "\n".join(lines)
