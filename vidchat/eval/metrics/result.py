"""The value every metric returns: a score, or a clear reason why it could not be computed."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricResult:
    """One metric's outcome.

    `value` is the headline number (None when unavailable); `details` holds the secondary
    numbers (e.g. the lip-sync lag); `reason` says why the metric was skipped, e.g. a weights
    path that the config did not give. Metrics never download anything: a missing network
    yields an unavailable result, not an error.
    """

    name: str
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.value is not None

    @classmethod
    def unavailable(cls, name: str, reason: str, warn: bool = True) -> MetricResult:
        if warn:
            warnings.warn(f"metric {name!r} skipped: {reason}", stacklevel=2)
        return cls(name=name, value=None, reason=reason)

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-friendly form (NaN becomes None)."""
        value = None if self.value is None or math.isnan(self.value) else float(self.value)
        return {"name": self.name, "value": value, "details": self.details, "reason": self.reason}
