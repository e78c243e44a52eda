"""The analyses' figures: Sobol indices with error bars, their convergence, the stress search's
trace and worst loss against the budget, and the venues side by side.

Drawn in the style of every perpsim figure (:mod:`perpsim.plots.style`) and written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from perpsim.plots.style import (
    COLORS,
    legend_beside,
    new_figure,
    no_data,
    save_png,
    style_context,
)

if TYPE_CHECKING:
    from perpsim.analysis.sensitivity import SensitivityPlan, SensitivityResult

__all__ = [
    "compare_figure",
    "convergence_figure",
    "funds_figure",
    "indices_figure",
    "stress_budget_figure",
    "stress_trace_figure",
]

_S1 = COLORS["index"]
_ST = COLORS["mark"]


def _short(keys: Sequence[str]) -> list[str]:
    short = [k.rsplit(".", 1)[-1] if not k.rsplit(".", 1)[-1].isdigit() else k for k in keys]
    return short if len(set(short)) == len(short) else list(keys)


def indices_figure(plan: SensitivityPlan, result: SensitivityResult, path: Path) -> Path:
    """S1 and ST of every parameter at N, one panel per metric, with their intervals."""
    idx = result.indices
    n_full = plan.levels[2]
    metrics = list(plan.spec.metrics)
    labels = _short(plan.keys)
    x = np.arange(len(labels), dtype=np.float64)
    with style_context():
        fig, axes = new_figure(len(metrics), height=2.6 * len(metrics) + 0.8, sharex=True)
        for ax, metric in zip(axes, metrics, strict=True):
            m = idx[(idx["metric"] == metric) & (idx["n"] == n_full)].set_index("parameter")
            m = m.reindex(list(plan.keys))
            if m["ST"].isna().all():
                no_data(ax, f"{metric} does not vary: no indices")
                ax.set_title(metric)
                continue
            ax.bar(
                x - 0.2,
                m["S1"],
                0.4,
                yerr=m["S1_conf"],
                capsize=3,
                color=_S1,
                label="first order S1",
            )
            ax.bar(x + 0.2, m["ST"], 0.4, yerr=m["ST_conf"], capsize=3, color=_ST, label="total ST")
            ax.axhline(0.0, color=COLORS["muted"], linewidth=0.8)
            verdict = result.stable.get(metric)
            tail = (
                ""
                if verdict is None
                else ("  (stable N/2→N)" if verdict else "  (NOT stable N/2→N)")
            )
            ax.set_title(f"{metric}: Sobol indices at N={n_full}{tail}")
            ax.set_ylabel("share of variance")
            legend_beside(ax)
        axes[-1].set_xticks(x, labels, rotation=20, ha="right")
        fig.suptitle(
            f"{plan.name}: which parameters matter ({round(plan.spec.conf_level * 100)}%"
            " bootstrap intervals)",
            x=0.01,
            ha="left",
        )
        return save_png(fig, path)


def convergence_figure(plan: SensitivityPlan, result: SensitivityResult, path: Path) -> Path:
    """Every index at N/4, N/2 and N: flat lines mean the design is large enough."""
    idx = result.indices
    metrics = list(plan.spec.metrics)
    labels = _short(plan.keys)
    with style_context():
        fig, axes = new_figure(len(metrics), 2, height=2.4 * len(metrics) + 0.8, sharex=True)
        for i, metric in enumerate(metrics):
            m = idx[idx["metric"] == metric]
            for j, which in enumerate(("S1", "ST")):
                ax = axes[2 * i + j]
                ax.set_title(f"{metric}: {which}")
                if m[which].isna().all():
                    no_data(ax, "no variance")
                    continue
                for key, label in zip(plan.keys, labels, strict=True):
                    r = m[m["parameter"] == key].sort_values("n")
                    ax.errorbar(
                        r["n"],
                        r[which],
                        yerr=r[f"{which}_conf"],
                        marker="o",
                        capsize=2,
                        label=label,
                    )
                ax.set_xscale("log", base=2)
                ax.set_xticks(list(plan.levels), [str(n) for n in plan.levels])
                if j == 1:
                    legend_beside(ax)
        for ax in axes[-2:]:
            ax.set_xlabel("N (base samples)")
        fig.suptitle(f"{plan.name}: convergence of the indices", x=0.01, ha="left")
        return save_png(fig, path)


def stress_trace_figure(trace: pd.DataFrame, objective: str, path: Path) -> Path:
    """Every candidate's loss in search order, and the worst found so far."""
    with style_context():
        fig, (ax,) = new_figure(1, height=3.6)
        ok = trace[trace["loss"].notna()]
        ax.scatter(ok["trial"], ok["loss"], s=12, color=COLORS["muted"], label="candidate")
        ax.step(
            ok["trial"],
            ok["loss"].cummax(),
            where="post",
            color=COLORS["mark"],
            label="worst so far",
        )
        ax.set_xlabel("candidate (search order)")
        ax.set_ylabel(objective)
        ax.set_title(f"worst-case search: {objective} of every candidate")
        legend_beside(ax)
        return save_png(fig, path)


def stress_budget_figure(budget: pd.DataFrame, objective: str, path: Path) -> Path:
    """The worst loss found within a budget of runs, against the budget."""
    with style_context():
        fig, (ax,) = new_figure(1, height=3.2)
        ax.plot(budget["budget"], budget["worst_loss"], marker="o", color=COLORS["mark"])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget (candidates evaluated)")
        ax.set_ylabel(f"worst {objective}")
        ax.set_title("how the worst loss found grows with the budget")
        return save_png(fig, path)


def _num(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def compare_figure(table: pd.DataFrame, rows: Sequence[tuple[str, str]], path: Path) -> Path:
    """One small bar chart per cross-design metric, one bar per venue kind.

    Args:
        table: One column per venue kind, one row per metric (NaN: the design has none).
        rows: ``(metric row, title)`` pairs to draw.
        path: The PNG.
    """
    kinds = list(table.columns)
    ncols = 3
    nrows = math.ceil(len(rows) / ncols)
    palette = [
        COLORS["index"],
        COLORS["mark"],
        COLORS["fair"],
        COLORS["lp"],
        COLORS["social"],
        COLORS["muted"],
    ]
    with style_context():
        fig, axes = new_figure(nrows, ncols, height=2.5 * nrows + 0.6, sharex=False)
        for ax, (row, title) in zip(axes, rows, strict=False):
            values = [_num(table.loc[row, k]) for k in kinds]
            ax.set_title(title)
            if all(math.isnan(v) for v in values):
                no_data(ax, "no design has it")
                continue
            x = np.arange(len(kinds))
            shown = [0.0 if math.isnan(v) else v for v in values]
            ax.bar(x, shown, color=[palette[i % len(palette)] for i in range(len(kinds))])
            for xi, v in zip(x, values, strict=True):
                if math.isnan(v):
                    ax.text(float(xi), 0.0, "none", ha="center", va="bottom", color=COLORS["muted"])
            ax.set_xticks(x, kinds)
            ax.axhline(0.0, color=COLORS["muted"], linewidth=0.8)
        for ax in axes[len(rows) :]:
            ax.set_axis_off()
        fig.suptitle("the same market on every design", x=0.01, ha="left")
        return save_png(fig, path)


def funds_figure(paths: dict[str, dict[str, pd.Series]], path: Path) -> Path:
    """Each design's loss-absorbing funds over the run (seed index 0), one panel per design."""
    kinds = list(paths)
    with style_context():
        fig, axes = new_figure(len(kinds), height=2.3 * len(kinds) + 0.6, sharex=False)
        for ax, kind in zip(axes, kinds, strict=True):
            ax.set_title(f"{kind}: the funds that absorb losses")
            if not paths[kind]:
                no_data(ax, "no fund: losses fall on the LPs")
                continue
            for fund, series in paths[kind].items():
                ax.plot(series.index, series.to_numpy(), label=fund)
            ax.set_ylabel("USD")
            legend_beside(ax)
        return save_png(fig, path)
