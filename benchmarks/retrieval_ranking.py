"""Retrieval ranking speed: Hamming top-R over packed codes vs float32 cosine top-R.

Per-query time at 60k items (Fashion-MNIST's database size), 16/32/64 bits vs 64-dim
features, one query and batches, both sides interleaved in one process; the issue's goal
(cosine / Hamming >= 10) from each of --runs runs and their median. Measuring code:
``llcpkg.speed_bench`` (shared with notebook 07).

    OMP_NUM_THREADS=1 python benchmarks/retrieval_ranking.py
    OMP_NUM_THREADS=1 python benchmarks/retrieval_ranking.py --k 16 --batch 1 --runs 5
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads its BLAS threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llcpkg.results import write_table  # noqa: E402
from llcpkg.speed_bench import SpeedConfig, median_goals, retrieval_speed, speed_goals  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    d = SpeedConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-db", type=int, default=d.n_db, help="database items")
    p.add_argument("--dim", type=int, default=d.dim, help="float feature width of the cosine baseline")
    p.add_argument("--k", type=int, nargs="+", default=list(d.ks), help="code lengths (bits)")
    p.add_argument("--batch", type=int, nargs="+", default=list(d.batches), help="queries per call")
    p.add_argument("--R", type=int, default=d.R, help="top-R cut-off")
    p.add_argument("--calls", type=int, default=d.calls, help="timed calls per side and (k, batch)")
    p.add_argument("--runs", type=int, default=3, help="repeats of the whole measurement (median reported)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--results-dir", default=".cache/bench-results",
                   help="tables go to RESULTS_DIR/tables/retrieval_ranking{,_goals}.{csv,md}")
    return p.parse_args(argv)


def main(argv=None) -> None:
    a = parse_args(argv)
    cfg = SpeedConfig(n_db=a.n_db, dim=a.dim, ks=tuple(a.k), batches=tuple(a.batch), R=a.R, calls=a.calls,
                      seed=a.seed)
    runs = [retrieval_speed(cfg) for _ in range(a.runs)]
    print(runs[-1].to_markdown(index=False, floatfmt=".4g"))
    goals = median_goals([speed_goals(retrieval=r) for r in runs])
    print()
    print(goals.to_markdown(index=False, floatfmt=".3g"))
    write_table(runs[-1], "retrieval_ranking", a.results_dir)
    write_table(goals, "retrieval_ranking_goals", a.results_dir)


if __name__ == "__main__":
    main()
