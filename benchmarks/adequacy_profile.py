"""Where notebook 08's time goes once every stage is cached: its four library calls, one at a time,
under cProfile (issue #16 item 6: profile before cutting).

Run after notebook 08 has trained (its stages cached), with the notebook's environment:

    LLC_PROFILE=cpu TQDM_DISABLE=1 PYTHONHASHSEED=0 python benchmarks/adequacy_profile.py retrieval
    python benchmarks/adequacy_profile.py trend ood factors --top 20

Prints each part's wall seconds and its cProfile lines by cumulative time. A part whose stages
are not cached trains them first: its time is then training, not evaluation.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llcpkg.experiments import adequacy as A  # noqa: E402
from llcpkg.profiles import get_profile  # noqa: E402

PARTS = {
    "trend": A.trend_table,  # the Omniglot runs at every epoch factor (notebook 01's pipeline)
    "retrieval": A.retrieval_trend_rows,  # notebook 03's methods at every factor
    "ood": A.ood_trend_rows,  # notebook 04's first held-out splits at every factor
    "factors": A.factors_table,  # one factor at a time on the validation split
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="+", choices=sorted(PARTS))
    ap.add_argument("--profile", default=None, help="run profile (default: $LLC_PROFILE, else cpu)")
    ap.add_argument("--top", type=int, default=30, help="cProfile lines to print per part")
    args = ap.parse_args(argv)
    cfg = A.AdequacyExperiment.for_profile(get_profile(args.profile))
    for part in args.parts:
        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.runcall(PARTS[part], cfg)
        print(f"{part}: {time.perf_counter() - start:.1f} s")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
