"""Decoding cost from 1e3 to 1e6 classes: llcpkg ED / ball / MHD vs faiss vs a dense classifier.

Prints a per-query table and the issue's goals, and writes both as CSV + Markdown
(``decode_scaling.csv`` and ``decode_scaling_goals.csv`` under ``--results-dir``/tables).
The measuring code lives in ``llcpkg.decode_bench`` (shared with notebook 07).

    OMP_NUM_THREADS=1 python benchmarks/decode_scaling.py                       # full grid
    OMP_NUM_THREADS=1 python benchmarks/decode_scaling.py --L 1000 1000000 --k 64
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/faiss load their thread pools

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llcpkg.decode_bench import (  # noqa: E402
    LLC_METHODS, FAISS_METHODS, BenchConfig, copy_bandwidth, environment_note, goals_table,
    run_benchmark,
)
from llcpkg.results import write_table  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    d = BenchConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--L", type=int, nargs="+", default=list(d.Ls), help="numbers of classes")
    p.add_argument("--k", type=int, nargs="+", default=list(d.ks), help="code lengths (bits)")
    p.add_argument("--batch", type=int, nargs="+", default=list(d.batches), help="queries per call")
    p.add_argument("--d", type=int, nargs="+", default=list(d.dense_ds),
                   help="dense classifier feature widths (none: --d with no value)")
    p.add_argument("--methods", nargs="+", default=list(d.methods),
                   choices=list(LLC_METHODS + FAISS_METHODS), help="code decoders to time")
    p.add_argument("--n-single", type=int, default=d.n_single, help="queries timed at batch 1")
    p.add_argument("--repeats", type=int, default=d.repeats, help="timed calls per batch")
    p.add_argument("--dense-max-mb", type=int, default=d.dense_max_bytes >> 20,
                   help="largest dense weight materialised; bigger ones are sliced and scaled")
    p.add_argument("--copy-mb", type=int, default=d.copy_bytes >> 20, help="copy-bandwidth buffer")
    p.add_argument("--threads", type=int, default=d.threads, help="faiss OpenMP threads")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--results-dir", default=".cache/bench-results",
                   help="tables go to RESULTS_DIR/tables/decode_scaling{,_goals}.{csv,md}")
    return p.parse_args(argv)


def main(argv=None) -> None:
    a = parse_args(argv)
    cfg = BenchConfig(Ls=tuple(a.L), ks=tuple(a.k), batches=tuple(a.batch), dense_ds=tuple(a.d),
                      methods=tuple(a.methods), n_single=a.n_single, repeats=a.repeats,
                      dense_max_bytes=a.dense_max_mb << 20, copy_bytes=a.copy_mb << 20,
                      threads=a.threads, seed=a.seed)
    print(environment_note(), flush=True)
    t0 = time.time()
    bw = copy_bandwidth(cfg.copy_bytes)
    print(f"copy bandwidth: {bw / 1e9:.1f} GB/s (2 x bytes / time of np.copyto)", flush=True)
    df = run_benchmark(cfg, progress=lambda s: print(f"  [{time.time() - t0:6.1f}s] {s}",
                                                     file=sys.stderr, flush=True))
    df["mhd_bound_us"] = df["codebook_bytes"] / bw * 1e6
    df.loc[df.family == "dense", "mhd_bound_us"] = float("nan")
    goals = goals_table(df, bw)
    cols = ["L", "k", "d", "batch", "method", "us_per_query", "index_bytes", "peak_bytes",
            "timed_rows"]
    print(df[cols].to_markdown(index=False, floatfmt=".4g"))
    print()
    print(goals.to_markdown(index=False, floatfmt=".3g"))
    sliced = df[(df.family == "dense") & (df.timed_rows < df.L)]
    if len(sliced):
        print(f"\ndense rows with timed_rows < L: a weight slice was timed and scaled by L / rows.")
    write_table(df, "decode_scaling", a.results_dir)
    path = write_table(goals, "decode_scaling_goals", a.results_dir)
    print(f"wrote {Path(path).parent}/decode_scaling{{,_goals}}.{{csv,md}} "
          f"in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
