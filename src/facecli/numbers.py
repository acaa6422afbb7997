"""One check for every number a user or a file gives: a real number (not a string, a bool or NaN), finite,
an integer where a count is meant, and inside its range. The CLI, YAML files, the Python API and the
metadata readers all call it, so each option says the same thing however it arrives."""

from __future__ import annotations

import math
from dataclasses import dataclass

from facecli.errors import FaceCliError


@dataclass(frozen=True)
class Bound:
    """What a number may be: [low, high], either end open or absent; `integer` for counts."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        """`an integer >= 1`, `a number in (0, 1]` and so on."""
        kind = "an integer" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{kind} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        return f"a finite {kind[2:] if self.integer else 'number'}"

    def holds(self, value: float) -> bool:
        """Whether a finite `value` is inside the range."""
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below


def check_number(name: str, value: object, bound: Bound, where: str = "") -> float | int:
    """`value` when it is a real, finite number inside `bound` (an integer where one is meant); else a one-line
    FaceCliError naming `name` (and `where`, a file say), the value and what is expected."""
    prefix = f"{where}: " if where else ""
    expected = f"{prefix}{name} must be {bound.describe()}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FaceCliError(expected)
    if not math.isfinite(value) or not bound.holds(value):
        raise FaceCliError(expected)
    if bound.integer and value != int(value):
        raise FaceCliError(expected)
    return int(value) if bound.integer else value


POSITIVE = Bound(0, low_open=True)
NOT_NEGATIVE = Bound(0)
FINITE = Bound()
COUNT = Bound(1, integer=True)
FRACTION = Bound(0, 1)
ANGULAR_MARGIN = Bound(0, math.pi, high_open=True)  # radians added to an angle in [0, pi]
SAMPLE_RATE = Bound(0, 1, low_open=True)  # Partial FC's share of the class centres

# what a score of L2-normalised embeddings can be: a threshold outside it decides every pair alike
SCORE_RANGES: dict[str, Bound] = {"cosine": Bound(-1, 1), "euclidean": Bound(0, 2)}


def check_threshold(threshold: object, metric: str) -> float:
    """`threshold` when it is a finite number a `metric` score can take, else a one-line error."""
    return check_number(f"--threshold (a {metric} score)", threshold, SCORE_RANGES[metric])
