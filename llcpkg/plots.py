"""Figures shared by the notebooks; each function returns a matplotlib Figure."""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["grouped_bars"]


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
