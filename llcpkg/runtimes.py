"""Where a reproduce run spends its time: a recorder of stage wall times (issue #16, item 6).

Stages (a training stage, an evaluation, a whole notebook) are recorded in this process with
:func:`record` or :func:`timed`, and :func:`write_run_times` writes them to
``results/tables/run_times.csv`` (columns ``notebook``, ``stage``, ``seconds``, ``cached``, ``runs``):
one row per (notebook, stage, cached), ``seconds`` summed over its ``runs`` records. Writing merges
with the table already there: rows for a (notebook, stage) recorded now replace the old ones, all
other rows stay, so a notebook's kernel and the reproduce process that runs it can both write.
Timings go to results, never into tests.

A notebook runs in its own kernel: :mod:`llcpkg.reproduce` sets ``$LLC_RUN_TIMES`` to a file and
``$LLC_NOTEBOOK`` to the notebook's name; every record is then also appended to that file as a JSON
line (:func:`load_log`), and reproduce merges them, with the notebook's total, into the table.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from .results import read_table, write_table

__all__ = ["record", "timed", "records", "clear", "write_run_times", "load_log", "COLUMNS", "TABLE", "LOG_ENV"]

COLUMNS = ["notebook", "stage", "seconds", "cached", "runs"]
TABLE = "run_times"
LOG_ENV = "LLC_RUN_TIMES"  # a JSON-lines file every record is appended to (set by reproduce)
_RECORDS: list[dict[str, object]] = []


def _notebook(notebook: str | None) -> str:
    """``notebook``, else ``$LLC_NOTEBOOK`` (for reproduce to set in a kernel), else ``"-"``."""
    return notebook or os.environ.get("LLC_NOTEBOOK") or "-"


def record(notebook: str | None, stage: str, seconds: float, cached: bool) -> None:
    """Record that ``stage`` of ``notebook`` took ``seconds`` (``cached``: loaded, not computed)."""
    if seconds < 0:
        raise ValueError(f"record: negative time {seconds} for stage {stage!r}")
    row = {"notebook": _notebook(notebook), "stage": stage, "seconds": float(seconds), "cached": bool(cached)}
    _RECORDS.append(row)
    if log := os.environ.get(LOG_ENV):
        with open(log, "a") as f:
            f.write(json.dumps(row) + "\n")


def load_log(path: str | Path) -> int:
    """Add the records in the JSON-lines file ``path`` (written by a kernel) to this process's; return
    how many. A missing file holds none."""
    path = Path(path)
    if not path.exists():
        return 0
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    _RECORDS.extend(rows)
    return len(rows)


class _Timed:
    """What :func:`timed` yields: set ``cached = True`` inside the block when the stage was loaded."""
    cached: bool = False


@contextmanager
def timed(stage: str, notebook: str | None = None, cached: bool = False) -> Iterator[_Timed]:
    """Record the wall time of the ``with`` block as ``stage``; the block may set ``.cached`` on
    what it gets. A block that raises is not recorded."""
    t = _Timed()
    t.cached = cached
    t0 = time.perf_counter()
    yield t
    record(notebook, stage, time.perf_counter() - t0, t.cached)


def records() -> pd.DataFrame:
    """The records of this process so far, one row each (columns notebook, stage, seconds, cached)."""
    return pd.DataFrame(_RECORDS, columns=COLUMNS[:-1])


def clear() -> None:
    """Forget the records of this process."""
    _RECORDS.clear()


def write_run_times(results_dir: str | Path) -> Path:
    """Merge this process's records into ``results_dir/tables/run_times.csv`` (atomically, through
    :func:`llcpkg.results.write_table`) and return its path. Writing twice gives the same table."""
    new = records()
    new = (new.groupby(["notebook", "stage", "cached"], as_index=False, sort=False)
           .agg(seconds=("seconds", "sum"), runs=("seconds", "size")))[COLUMNS]
    path = Path(results_dir) / "tables" / f"{TABLE}.csv"
    try:
        old = read_table(TABLE, results_dir)
    except FileNotFoundError:
        old = pd.DataFrame(columns=COLUMNS)
    missing = [c for c in COLUMNS if c not in old.columns]
    if missing:
        raise KeyError(f"table {TABLE!r} at {path} has no column(s) {missing}")
    replaced = old.set_index(["notebook", "stage"]).index.isin(new.set_index(["notebook", "stage"]).index)
    merged = pd.concat([old.loc[~replaced, COLUMNS], new], ignore_index=True) if len(old) else new
    merged = merged.sort_values(["notebook", "stage", "cached"], kind="stable").reset_index(drop=True)
    return write_table(merged, TABLE, results_dir)
