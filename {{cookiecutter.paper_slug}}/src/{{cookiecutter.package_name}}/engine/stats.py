"""Statistics over seeds: mean, spread and Student-t confidence intervals.

A handful of seeds is a small sample, so a normal-approximation interval (mean +-
1.96 standard errors) would be too narrow; the Student-t interval is exact for
normally distributed results and the usual choice in papers. Written out here
(the t quantile by integrating its density) so that the project needs no SciPy.

    mean_interval(values)            mean +- t(0.975, n-1) * s / sqrt(n)
    difference_interval(a, b)        Welch: mean(a) - mean(b), unequal variances
    seeds_to_fit(std, margin)        how many seeds until the interval fits a margin
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

CONFIDENCE = 0.95
METHOD = "95% Student-t interval of the mean (mean +- t(0.975, n-1) * std / sqrt(n))"
DIFFERENCE_METHOD = "95% Welch t-interval of the difference of means"


def _log_norm(df: float) -> float:
    """log of the t density's constant, Gamma((df+1)/2) / (Gamma(df/2) sqrt(df pi))
    without the 1/sqrt(df), which the substitution in ``t_cdf`` absorbs."""
    return math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(math.pi)


def t_pdf(x: float, df: float) -> float:
    """Student's t density with ``df`` degrees of freedom."""
    return math.exp(_log_norm(df) - 0.5 * math.log(df) - (df + 1) / 2 * math.log1p(x * x / df))


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with ``df`` degrees of freedom (df > 0, not
    necessarily an integer: Welch's df is not)."""
    if x < 0:
        return 1.0 - t_cdf(-x, df)
    # With x = sqrt(df) * tan(theta) the density becomes a smooth cos^(df-1) on
    # [0, pi/2), which Simpson's rule integrates accurately even for df = 1,
    # whose tails are too heavy to integrate in x directly.
    log_norm = _log_norm(df)
    top = math.atan(x / math.sqrt(df))
    steps = 400  # even; error ~1e-12 at the quantiles used here

    def density(theta: float) -> float:
        return math.exp(log_norm + (df - 1) * math.log(max(math.cos(theta), 1e-300)))

    h = top / steps
    total = density(0.0) + density(top)
    total += sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


@lru_cache(maxsize=256)  # the same few (p, df) pairs come back for every metric
def t_quantile(p: float, df: float) -> float:
    """The x with P(T <= x) = p (p in [0.5, 1)), by Newton's method from x = 0.

    For x >= 0 the CDF is concave (the density falls), so each tangent step lands
    at or below the root: the steps rise steadily to it and cannot overshoot.
    8-12 CDF evaluations at the usual quantiles, where a bisection needs ~65."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p must be in [0.5, 1), got {p}")
    x = 0.0
    for _ in range(200):  # df = 1 at p = 0.9999 (x = 3183) takes 19
        step = (p - t_cdf(x, df)) / t_pdf(x, df)
        x += step
        if step <= 1e-12 * max(1.0, x):
            return x
    raise ArithmeticError(f"t_quantile({p}, {df}) did not converge")  # a bug, not a slow case


@dataclass
class Interval:
    """A mean (or difference of means) over seeds, its spread and 95% interval.
    With one value there is no spread to measure: std and the interval are NaN."""

    mean: float
    std: float  # sample standard deviation (n - 1); for a difference, its standard error
    n: int
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def mean_interval(values: list[float]) -> Interval:
    """Mean, sample std and the Student-t 95% interval of the mean."""
    n = len(values)
    mean, std = mean_std(values)
    if n < 2:
        return Interval(mean, math.nan, n, math.nan, math.nan)
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return Interval(mean, std, n, mean - half, mean + half)


def difference_interval(a: list[float], b: list[float]) -> Interval:
    """mean(a) - mean(b) with Welch's 95% interval (the two groups may have
    different spreads, e.g. an ablation that makes training erratic). ``std`` is the
    standard error of the difference; ``n`` the smaller group's size."""
    mean = sum(a) / len(a) - sum(b) / len(b)
    n = min(len(a), len(b))
    if n < 2:
        return Interval(mean, math.nan, n, math.nan, math.nan)
    va, vb = mean_std(a)[1] ** 2 / len(a), mean_std(b)[1] ** 2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0:  # identical results on every seed: nothing left to doubt
        return Interval(mean, 0.0, n, mean, mean)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2, df) * se
    return Interval(mean, se, n, mean - half, mean + half)


def seeds_to_fit(std: float, margin: float, groups: int = 1, limit: int = 1000) -> int | None:
    """The smallest number of seeds (per group) at which the 95% interval's half-width,
    at the observed ``std``, would fit inside ``margin``. ``groups`` = 2 for a
    difference of two groups with this std each. None when no number of seeds up to
    ``limit`` would do (the mean sits on the boundary)."""
    if margin <= 0 or not math.isfinite(std):
        return None
    if std == 0:
        return 2

    def fits(n: int) -> bool:
        df = groups * (n - 1)  # Welch's df when the groups are equally spread
        return t_quantile(0.5 + CONFIDENCE / 2, df) * std * math.sqrt(groups / n) <= margin

    if not fits(limit):
        return None
    low, high = 1, limit  # fits(high) holds; the half-width shrinks as n grows
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    return high
