"""Where results go, and writing them atomically.

Every table is written from a pandas DataFrame as CSV + Markdown, every figure as PNG;
each file is first written to a temporary name in the same folder and then renamed, so
an interrupted run never leaves a half-written result behind.

Staging: when ``$LLC_STAGING`` is set (``llcpkg.reproduce`` sets it for a notebook's kernel),
every file that would land inside ``$LLC_RESULTS`` is written under ``$LLC_STAGING`` instead,
and reproduce moves them into place only once the whole notebook has succeeded
(:func:`promote`). Without it (nbval, plain Python) results are written in place.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["project_root", "relative_to_root", "atomic_write", "write_table", "save_figure", "read_table", "reused_choice",
           "made_for",
           "staged", "promote"]

_CHECKOUT = Path(__file__).resolve().parents[1]  # the folder above llcpkg/, a checkout when it holds pyproject.toml


def project_root() -> Path:
    """The project root, never the working directory: ``$LLC_ROOT`` if set, else the checkout this
    package was imported from (an editable install or ``PYTHONPATH``); an installed copy outside a
    checkout has no root, and that is an error naming ``LLC_ROOT``."""
    if os.environ.get("LLC_ROOT"):
        return Path(os.environ["LLC_ROOT"]).resolve()
    if (_CHECKOUT / "pyproject.toml").exists():
        return _CHECKOUT
    raise RuntimeError(f"llcpkg is imported from {_CHECKOUT}, not a checkout of the project, so there is no "
                       "project root for .cache/ and results/: set LLC_ROOT to the folder that should hold them")


def relative_to_root(path: str | Path) -> str:
    """``path`` relative to the project root when it lies inside it (for printing: no absolute path
    of the building machine in a notebook); else the path unchanged."""
    path = Path(path).resolve()
    try:
        return path.relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def staged(path: str | Path) -> Path:
    """Where a result file is written now: under ``$LLC_STAGING`` when it is set and ``path`` lies
    inside ``$LLC_RESULTS``; else ``path`` itself."""
    path, stage, results = Path(path), os.environ.get("LLC_STAGING"), os.environ.get("LLC_RESULTS")
    if not stage or not results:
        return path
    try:
        return Path(stage) / path.resolve().relative_to(Path(results).resolve())
    except ValueError:
        return path


def promote(stage: Path, dest: Path) -> list[Path]:
    """Move every file under ``stage`` to the same place under ``dest`` (one rename each, same
    file system), remove ``stage`` and return the destination paths."""
    moved = []
    for src in sorted(p for p in Path(stage).rglob("*") if p.is_file()):
        out = Path(dest) / src.relative_to(stage)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, out)
        moved.append(out)
    shutil.rmtree(stage, ignore_errors=True)
    return moved


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename tmp_path to ``path`` (same folder, so the rename is atomic);
    return the path written, which is :func:`staged` ``(path)``."""
    path = staged(path)
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
    """Read ``results_dir/tables/{name}.csv`` back (this notebook's staged copy when there is one)."""
    path = Path(results_dir) / "tables" / f"{name}.csv"
    return pd.read_csv(staged(path) if staged(path).exists() else path)


def reused_choice(name: str, results_dir: str | Path,
                  fit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> pd.DataFrame | None:
    """The choice table ``name`` (a choice made on validation at a fixed seed, whatever the run's
    seeds) that the last full run wrote under ``results_dir``, as ``fit(table)`` returns it: the rows
    this run's choice would make, or None when the table was made for other candidates. None as well
    when there is no such table; then the caller makes the choice. The quick look reuses the full
    run's choices this way (:func:`llcpkg.seeds.quick_look_choice`) and says so."""
    try:
        table = read_table(name, results_dir)
    except FileNotFoundError:
        return None
    fitted = fit(table)
    where = relative_to_root(Path(results_dir) / "tables" / f"{name}.csv")
    if fitted is None:
        print(f"quick look: {where} was chosen among other candidates; choosing again")
    else:
        print(f"quick look: {name} reused from {where} (the full run's choice on validation; delete it to choose again)")
    return fitted


def made_for(table: pd.DataFrame, by: list[str], column: str, candidates: dict[tuple, tuple[float, ...]],
             chosen: str = "chosen") -> bool:
    """Whether the choice ``table`` holds, for every key of ``candidates`` (a tuple of values of the
    ``by`` columns), exactly those candidates in ``column`` (floats compared with a tolerance) and
    one ``chosen`` row. A missing column is a KeyError naming it, not a silent mismatch."""
    missing = [c for c in [*by, column, chosen] if c not in table.columns]
    if missing:
        raise KeyError(f"choice table lacks column(s) {missing}; has {list(table.columns)}")
    for key, want in candidates.items():
        rows = table[(table[by] == pd.Series(key, index=by)).all(axis=1)]
        got, want = np.sort(rows[column].to_numpy(float)), np.sort(np.asarray(want, float))
        if got.shape != want.shape or not np.allclose(got, want) or rows[chosen].sum() != 1:
            return False
    return True


def save_figure(fig, name: str, results_dir: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure to ``results_dir/figures/{name}.png`` atomically."""
    out = Path(results_dir) / "figures" / f"{name}.png"
    return atomic_write(out, lambda p: fig.savefig(p, dpi=dpi, bbox_inches="tight", format="png"))
