"""Pictures of a run, a sweep (over seeds too) and the gauntlet, drawn with matplotlib.

Imported only where a picture is drawn (end of training, end of a sweep), so
matplotlib's import time (~0.5 s) never delays the start of a run. Figures are
built without pyplot: no global backend, no display needed (clusters, CI), and
saving a ``Figure`` to .png renders it with Agg.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from .run_log import first_train_loss, is_train_loss

# Fixed margins (fractions of the figure) instead of tight_layout, which measures
# every label first and costs about as much again as drawing the figure.
TWO_PANELS = dict(left=0.1, right=0.98, bottom=0.14, top=0.91, wspace=0.3)
ONE_PANEL = dict(left=0.17, right=0.97, bottom=0.14, top=0.95)


def plot_training(records: list[dict], headline: str, run_dir: Path) -> Path:
    """training_curves.png: train loss (log scale when positive; one curve per player
    for a paper with players) and the validation headline metric."""
    keys = [k for k in dict.fromkeys(k for r in records for k in r) if is_train_loss(k)]
    val = [(r["step"], r[f"val/{headline}"]) for r in records if f"val/{headline}" in r]
    fig = Figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2, gridspec_kw=TWO_PANELS)
    positive = bool(keys)
    for key in keys:
        steps, losses = zip(*[(r["step"], r[key]) for r in records if key in r], strict=True)
        left.plot(steps, losses, label=key.removeprefix("train/"))
        positive &= all(loss > 0 for loss in losses if math.isfinite(loss))
    # A log axis shows the late, small improvements; it cannot show <= 0.
    if positive:
        left.set_yscale("log")
    if len(keys) > 1:
        left.legend(fontsize="small")
    left.set(xlabel="step", ylabel="train loss", title="training loss")
    if val:
        steps, values = zip(*val, strict=True)
        right.plot(steps, values, marker="o", color="tab:orange")
    right.set(xlabel="step", ylabel=f"val {headline}", title=f"validation {headline}")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    return _save(fig, run_dir / "training_curves.png")


def plot_sweep(rows: list[dict], x: str, headline: str, path: Path) -> Path:
    """Final train loss and validation metric against a swept value (log x for LRs);
    diverged jobs are marked with a cross at the top of the loss panel."""
    fig = Figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2, gridspec_kw=TWO_PANELS)
    ok = [r for r in rows if not r["diverged"]]
    bad = [r for r in rows if r["diverged"]]
    if ok:
        losses = [r["train_loss"] for r in ok]
        left.plot([r[x] for r in ok], losses, marker="o")
        if all(loss > 0 for loss in losses):  # losses spanning decades: a log axis
            left.set_yscale("log")
        right.plot(
            [r[x] for r in ok], [r[f"val/{headline}"] for r in ok], marker="o", color="tab:orange"
        )
    if bad:
        top = max((r["train_loss"] for r in ok), default=1.0)
        left.scatter(
            [r[x] for r in bad], [top] * len(bad), marker="x", color="red", label="diverged"
        )
        left.legend()
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel(x)
        axis.grid(alpha=0.3)
    left.set(ylabel="final train loss", title=f"train loss vs {x}")
    right.set(ylabel=f"val {headline}", title=f"validation {headline} vs {x}")
    return _save(fig, path)


def plot_seeds(curves: dict[str, list[list[dict]]], headline: str, path: Path) -> Path:
    """Train loss and the validation headline metric against the step: each seed's
    curve thin, their mean (at the steps every seed logged) thick; one colour per
    sweep point (``curves``: point label -> each seed's metrics.jsonl records)."""
    fig = Figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2, gridspec_kw=TWO_PANELS)
    colours = [f"C{i}" for i in range(10)]
    positive = True
    # With players, the loss of the player that steps first.
    loss_key = first_train_loss([r for seeds in curves.values() for rs in seeds for r in rs])
    for i, (label, seeds) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        for axis, key in ((left, loss_key), (right, f"val/{headline}")):
            series = [{r["step"]: r[key] for r in records if key in r} for records in seeds]
            series = [s for s in series if s]
            for s in series:
                axis.plot(list(s), list(s.values()), color=colour, alpha=0.35, linewidth=0.8)
            common = sorted(set.intersection(*(set(s) for s in series))) if series else []
            if common:
                mean = [sum(s[step] for s in series) / len(series) for step in common]
                axis.plot(
                    common,
                    mean,
                    color=colour,
                    linewidth=2.2,
                    label=f"{label} (mean of {len(series)})",
                )
            if key == loss_key:
                positive &= all(v > 0 for s in series for v in s.values() if math.isfinite(v))
    if positive:
        left.set_yscale("log")
    left.set(xlabel="step", ylabel="train loss", title="training loss, per seed and mean")
    right.set(
        xlabel="step", ylabel=f"val {headline}", title=f"validation {headline}, per seed and mean"
    )
    for axis in (left, right):
        axis.grid(alpha=0.3)
    right.legend(fontsize="small")
    return _save(fig, path)


def plot_lines(
    curves: dict[str, list[float]], xlabel: str, ylabel: str, path: Path, log_y=True, x=None
) -> Path:
    """One line per named curve against the step, or against ``x`` on a log axis
    (the gauntlet's overfit curves and its LR range test)."""
    fig = Figure(figsize=(6, 3.8))
    axis = fig.subplots(gridspec_kw=ONE_PANEL)
    for name, values in curves.items():
        axis.plot(x if x is not None else range(len(values)), values, label=name)
    if x is not None:
        axis.set_xscale("log")
    if log_y and all(v > 0 for values in curves.values() for v in values if math.isfinite(v)):
        axis.set_yscale("log")
    axis.set(xlabel=xlabel, ylabel=ylabel)
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)  # no pyplot, so nothing to close: the figure is garbage
    return path
