"""The seeds a run is made over, and per-seed tables (issue #16).

Every experiment family runs its headline configurations once per seed. A seed changes the
initialisation and the data order, never the data split (:data:`llcpkg.pipeline.SPLIT_SEED`) or
held-out classes unless a family says so. The seeds of a run come from, in order: the notebook's
``seeds`` parameter, ``$LLC_SEEDS`` (``make reproduce SEEDS=0``), the profile's ``seeds``
(``cpu``: 0 1 2, ``smoke``: 0).

A per-seed table has one row per seed and configuration with a ``seed`` column
(:func:`over_seeds`); its summary, :func:`summary_table` (mean, standard deviation and 95%
t-interval over seeds, :func:`llcpkg.stats.summarise_seeds`), is written beside it as
``<table>_summary``.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Sequence

import pandas as pd

from .profiles import Profile
from .results import reused_choice
from .stats import summarise_seeds

__all__ = ["SEED", "ENV", "parse_seeds", "resolve_seeds", "is_quick_look", "quick_look_choice", "over_seeds", "summary_name", "summary_table"]

SEED = "seed"  # the seed column of every per-seed table
ENV = "LLC_SEEDS"


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0 1 2"`` → ``(0, 1, 2)``; anything else is a ``ValueError`` naming the text."""
    parts = text.replace(",", " ").split()
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"seeds must be non-negative integers like '0 1 2', got {text!r}") from None
    return _checked(seeds, text)


def _checked(seeds: Sequence[int], source: object) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, got {source!r}")
    return seeds


def resolve_seeds(profile: Profile, seeds: Iterable[int] | int | None = None) -> tuple[int, ...]:
    """The seeds of a run: ``seeds`` if given (an int is one seed), else ``$LLC_SEEDS``, else
    ``profile.seeds``."""
    if seeds is not None:
        return _checked([seeds] if isinstance(seeds, int) else list(seeds), seeds)
    if os.environ.get(ENV, "").strip():
        return parse_seeds(os.environ[ENV])
    return _checked(profile.seeds, profile.name)


def is_quick_look(profile: Profile, seeds: Sequence[int]) -> bool:
    """Whether a run of ``profile`` over ``seeds`` is the quick look (``make reproduce SEEDS=0``): one
    seed, on any profile but ``smoke`` (whose one seed runs everything small, for CI). The quick look
    makes every verdict at that seed. It skips the studies that only read as trends over seeds and
    training length: notebook 04's extra code lengths, notebook 08's ×2 runs and factor study (each
    family's ``QUICK_LOOK``; a parameter given explicitly always wins). It reuses the choices that the
    full run made on validation at a fixed seed instead of making them again
    (:func:`quick_look_choice`)."""
    return len(tuple(seeds)) == 1 and profile.name != "smoke"


def quick_look_choice(profile: Profile, seeds: Sequence[int], name: str,
                      fit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> pd.DataFrame | None:
    """In the quick look, the full run's choice table ``name`` from the profile's results folder as
    ``fit`` accepts it (:func:`llcpkg.results.reused_choice`); None for any other run, which makes
    its own choices, and None when the table is missing or was made for other candidates."""
    return reused_choice(name, profile.results_dir, fit) if is_quick_look(profile, seeds) else None


def over_seeds(one_seed: Callable[[int], pd.DataFrame], seeds: Sequence[int]) -> pd.DataFrame:
    """``one_seed(seed)`` for every seed, stacked, with the ``seed`` column first: the per-seed table.
    ``one_seed`` must not add a ``seed`` column of its own."""
    tables = []
    for s in seeds:
        t = one_seed(int(s))
        if SEED in t.columns:
            raise ValueError(f"over_seeds: the table of seed {s} already has a {SEED!r} column")
        tables.append(t.assign(**{SEED: int(s)})[[SEED, *t.columns]])
    return pd.concat(tables, ignore_index=True)


def summary_name(table: str) -> str:
    """The summary table written beside ``table``: ``classification`` → ``classification_summary``."""
    return f"{table}_summary"


def summary_table(per_seed: pd.DataFrame, by: list[str], values: list[str], table: str = "table") -> pd.DataFrame:
    """Mean, std and 95% t-interval over seeds of ``values`` for each group of ``by``
    (columns ``<v> mean|std|lo|hi`` and ``seeds``; :func:`llcpkg.stats.summarise_seeds`)."""
    return summarise_seeds(per_seed, by, values, seed_col=SEED, table=table)
