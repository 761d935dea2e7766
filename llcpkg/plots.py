"""Figures shared by the notebooks; each function returns a matplotlib Figure."""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["grouped_bars"]


def grouped_bars(df: pd.DataFrame, group: str, columns: list[str], ylabel: str, title: str,
                 ylim: tuple[float, float] | None = None):
    """One group of bars per row of ``df`` (labelled by ``group``), one bar per column."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(df) * len(columns) / 3), 4))
    width = 0.8 / len(columns)
    x = np.arange(len(df))
    for i, col in enumerate(columns):
        bars = ax.bar(x + (i - (len(columns) - 1) / 2) * width, df[col], width, label=col)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, rotation=90, padding=2)
    ax.set_xticks(x, df[group], rotation=0)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    fig.tight_layout()
    return fig
