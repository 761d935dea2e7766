"""Figures shared by the notebooks; each function returns a matplotlib Figure."""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["grouped_bars", "summary_lines"]


def grouped_bars(df: pd.DataFrame, group: str, columns: list[str], ylabel: str, title: str,
                 ylim: tuple[float, float] | None = None, summary: bool = False):
    """One group of bars per row of ``df`` (labelled by ``group``), one bar per column.

    ``summary=True``: ``df`` is a seed summary (:func:`llcpkg.seeds.summary_table`); each bar is
    ``"<col> mean"`` with an error bar from ``"<col> lo"`` to ``"<col> hi"`` (the 95% interval)."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(df) * len(columns) / 3), 4))
    width = 0.8 / len(columns)
    x = np.arange(len(df))
    for i, col in enumerate(columns):
        height = df[f"{col} mean"] if summary else df[col]
        yerr = np.vstack([height - df[f"{col} lo"], df[f"{col} hi"] - height]) if summary else None
        bars = ax.bar(x + (i - (len(columns) - 1) / 2) * width, height, width, label=col, yerr=yerr, capsize=2)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, rotation=90, padding=2)
    ax.set_xticks(x, df[group], rotation=0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    fig.tight_layout()
    return fig


def summary_lines(summary: pd.DataFrame, x: str, columns: list[str], ylabel: str, title: str, ax=None,
                  xlabel: str | None = None):
    """One line per column of a seed summary (:func:`llcpkg.seeds.summary_table`) against ``x``:
    markers at ``"<col> mean"`` with error bars from ``"<col> lo"`` to ``"<col> hi"`` (the 95%
    interval). Draws on ``ax`` if given; returns the Figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    df = summary.sort_values(x)
    for col in columns:
        mean = df[f"{col} mean"].to_numpy(float)
        yerr = np.vstack([mean - df[f"{col} lo"].to_numpy(float), df[f"{col} hi"].to_numpy(float) - mean])
        ax.errorbar(df[x], mean, yerr=yerr, marker="o", capsize=3, label=col)
    ax.set_xticks(df[x].unique())
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure
