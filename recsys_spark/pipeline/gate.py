"""The quality gate: publish tonight's lists only if they are not worse than the last ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict and the numbers behind it."""

    passed: bool
    metric: str
    value: float
    previous: float | None
    previous_date: date | None
    tolerance: float
    reason: str


def quality_gate(
    metric: str,
    value: float,
    previous: float | None,
    *,
    tolerance: float,
    previous_date: date | None = None,
) -> GateDecision:
    """Pass when `value >= previous - tolerance`, or when nothing was published before.

    A NaN `value` (no held-out user to score) never passes: an unmeasured model is not
    published over a measured one.
    """
    if value != value:  # NaN
        passed, reason = False, f"{metric} could not be measured (no held-out users)"
    elif previous is None:
        passed, reason = True, f"first publication ({metric} {value:.4f})"
    elif value >= previous - tolerance:
        passed = True
        reason = (
            f"{metric} {value:.4f} vs {previous:.4f} published for {previous_date} "
            f"(tolerance {tolerance})"
        )
    else:
        passed = False
        reason = (
            f"{metric} {value:.4f} is {previous - value:.4f} below the {previous:.4f} published "
            f"for {previous_date}, more than the tolerance {tolerance}: previous lists stay live"
        )
    return GateDecision(passed, metric, value, previous, previous_date, tolerance, reason)
