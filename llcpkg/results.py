"""Where results go, and writing them atomically.

Every table is written from a pandas DataFrame as CSV + Markdown, every figure as PNG;
each file is first written to a temporary name in the same folder and then renamed, so
an interrupted run never leaves a half-written result behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

__all__ = ["project_root", "atomic_write", "write_table", "save_figure", "read_table"]


def project_root() -> Path:
    """The repository root: $LLC_ROOT, else the first parent of cwd holding llcpkg/ and pyproject.toml."""
    if os.environ.get("LLC_ROOT"):
        return Path(os.environ["LLC_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").exists() and (p / "llcpkg").is_dir():
            return p
    return here


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename tmp_path to ``path`` (same folder, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_table(df: pd.DataFrame, name: str, results_dir: str | Path, floatfmt: str = ".4g") -> Path:
    """Write ``df`` to ``results_dir/tables/{name}.csv`` and ``.md``; return the CSV path."""
    tables = Path(results_dir) / "tables"
    csv = atomic_write(tables / f"{name}.csv", lambda p: df.to_csv(p, index=False))
    md_text = df.to_markdown(index=False, floatfmt=floatfmt)
    atomic_write(tables / f"{name}.md", lambda p: p.write_text(md_text + "\n"))
    return csv


def read_table(name: str, results_dir: str | Path) -> pd.DataFrame:
    """Read ``results_dir/tables/{name}.csv`` back."""
    return pd.read_csv(Path(results_dir) / "tables" / f"{name}.csv")


def save_figure(fig, name: str, results_dir: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure to ``results_dir/figures/{name}.png`` atomically."""
    out = Path(results_dir) / "figures" / f"{name}.png"
    return atomic_write(out, lambda p: fig.savefig(p, dpi=dpi, bbox_inches="tight", format="png"))
