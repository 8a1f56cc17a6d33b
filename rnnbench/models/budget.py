"""Parameter budgets and counts for the non-recurrent builders (transformer, tcn, esn).

A builder counts its trainable parameters from its options (`size(width)`, monotone in the width) instead of building
throwaway models, so a search over a dozen widths costs microseconds and draws nothing from the random state the
caller seeded; `checked` then compares the count with the model actually built. `record_facts` attaches what a run
should log about the model (`model.rnnbench_info`).
"""
from __future__ import annotations

from typing import Callable

from rnnbench.models.recurrent import IncompatibleModelError, count_trainable


def largest_within(size: Callable[[int], int], budget: int, *, start: int = 1, widest: int = 1 << 16) -> int:
    """The largest width >= `start` whose size is at most `budget` (`start` when even that exceeds it)."""
    low, high = start, max(2 * start, start + 1)
    if size(low) > budget:
        return low
    while size(high) <= budget and high < widest:
        low, high = high, high * 2
    if size(high) <= budget:
        return high
    while high - low > 1:
        middle = (low + high) // 2
        if size(middle) <= budget:
            low = middle
        else:
            high = middle
    return low


def nearest(size: Callable[[int], int], budget: int, *, what: str, option: str, hint: str, start: int = 1) -> int:
    """The width whose size is nearest `budget`, which must lie within 5% of it; else an `IncompatibleModelError`
    naming `what` (the model), `option` (the width searched) and `hint` (what the user can change)."""
    low = largest_within(size, budget, start=start)
    if size(low) > budget * 1.05:
        raise IncompatibleModelError(
            f"param_budget={budget} is too small for {what}: even {option}={start} needs {size(low)} trainable "
            f"parameters; raise the budget or {hint}")
    best = min((low, low + 1), key=lambda width: abs(size(width) - budget))
    if abs(size(best) - budget) > 0.05 * budget:
        raise IncompatibleModelError(
            f"no {option} puts {what} within 5% of param_budget={budget} (closest: {size(best)} at {option}={best}); "
            f"change the budget or {hint}")
    return best


def head_width(outputs) -> int:
    """Units of the Dense layer of a head (`recurrent._head`): logits, logits with the CTC blank, or forecasts."""
    return {"classification": outputs.num_classes, "causal_steps": outputs.num_classes,
            "ctc": (outputs.num_classes or 0) + 1, "forecast": (outputs.horizon or 0) * outputs.targets}[outputs.head]


def checked(model, budget: int):
    """`model`, after checking that its trainable parameters are within 5% of `budget`, as its builder's count
    promised (a mismatch is a bug in that count, not a user's mistake)."""
    count = count_trainable(model)
    if abs(count - budget) > 0.05 * budget:
        raise AssertionError(f"{model.name} has {count} trainable parameters, but its budget search counted it "
                             f"within 5% of {budget}: the search's count no longer matches the builder")
    return model


def record_facts(model, **facts):
    """Sets `model.rnnbench_info`: total and trainable parameters plus `facts`, as plain ints and floats."""
    info = {"total_params": int(model.count_params()), "trainable_params": count_trainable(model)}
    info.update({key: float(value) if isinstance(value, float) else int(value) for key, value in facts.items()})
    model.rnnbench_info = info
    return model
