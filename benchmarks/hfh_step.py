"""HFH training-step cost on notebook 06's 3-layer MLP, against HashedNets and dense.

One SGD step (forward, backward, update) and inference, the models timed in turn within
each repeat (``llcpkg.compress.overhead``); the issue's goal (HFH / HashedNets <= 2) from each
of --runs runs and their median. Add --profile for a torch.profiler breakdown of the HFH step.

    OMP_NUM_THREADS=1 python benchmarks/hfh_step.py
    OMP_NUM_THREADS=1 python benchmarks/hfh_step.py --hidden 1000 --runs 5 --profile
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch sizes its thread pool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from llcpkg.results import write_table  # noqa: E402
from llcpkg.speed_bench import SpeedConfig, hfh_step_profile, hfh_step_speed, median_goals, speed_goals  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    d = SpeedConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=list(d.hidden), help="MLP hidden widths")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--factor", type=float, default=d.factor, help="compression factor")
    p.add_argument("--hashes", type=int, default=d.hashes, help="HFH's U")
    p.add_argument("--depth", type=int, default=d.depth, help="HFH's reconstruction depth")
    p.add_argument("--steps", type=int, default=d.steps, help="timed steps per model and run")
    p.add_argument("--runs", type=int, default=3, help="repeats of the whole measurement (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top operators of the HFH step")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--results-dir", default=".cache/bench-results",
                   help="tables go to RESULTS_DIR/tables/hfh_step{,_goals}.{csv,md}")
    return p.parse_args(argv)


def main(argv=None) -> None:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = SpeedConfig(hidden=tuple(a.hidden), batch_size=a.batch_size, factor=a.factor, hashes=a.hashes,
                      depth=a.depth, steps=a.steps, seed=a.seed)
    runs = [hfh_step_speed(cfg) for _ in range(a.runs)]
    print(runs[-1].to_markdown(index=False, floatfmt=".4g"))
    goals = median_goals([speed_goals(hfh=r) for r in runs])
    print()
    print(goals.to_markdown(index=False, floatfmt=".3g"))
    if a.profile:
        print()
        print(hfh_step_profile(cfg).to_markdown(index=False, floatfmt=".3g"))
    write_table(runs[-1], "hfh_step", a.results_dir)
    write_table(goals, "hfh_step_goals", a.results_dir)


if __name__ == "__main__":
    main()
