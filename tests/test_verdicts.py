"""Each verdict rule on hand-made intervals: holds, does not hold, inconclusive (straddling), and
inconclusive from an under-trained baseline."""
import pandas as pd
import pytest

from llcpkg.experiments import summary
from llcpkg.stats import Interval, paired_interval, seed_interval, summarise_seeds
from llcpkg.verdicts import (FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, PARTLY, Verdict, adequacy_gate, at_least,
                             at_most, combine, timing_rule, within)


def _iv(lo: float, hi: float, n: int = 3) -> Interval:
    return Interval(mean=(lo + hi) / 2, std=1.0, lo=lo, hi=hi, n=n)


def test_vocabulary_matches_claims(tmp_path):
    # the scoreboard's labels are this module's: an empty results folder gives NOT_RUN rows
    claims, _ = summary.scoreboard(tmp_path)
    assert set(claims["verdict"]) == {NOT_RUN} and NOT_RUN == "not run"
    assert (HOLDS, PARTLY, FAILS) == ("holds", "partly", "does not hold here")


@pytest.mark.parametrize("lo, hi, expected", [(2.0, 3.0, HOLDS), (1.5, 1.9, FAILS), (1.5, 2.5, INCONCLUSIVE),
                                              (2.0, 2.0, HOLDS)])
def test_at_least(lo, hi, expected):
    v = at_least(_iv(lo, hi), 2.0, what="MHD − MIPS")
    assert v.verdict == expected and v.seeds == 3
    assert "2.000" in v.rule and "MHD − MIPS" in v.rule and "95% t-interval of MHD − MIPS over 3 seeds" in v.rule


@pytest.mark.parametrize("lo, hi, expected", [(0.5, 2.4, HOLDS), (2.5, 3.0, FAILS), (2.0, 3.0, INCONCLUSIVE)])
def test_at_most(lo, hi, expected):
    assert at_most(_iv(lo, hi), 2.4, what="baseline − MHD", unit=" points", fmt=".1f").verdict == expected


def test_at_most_on_per_seed_values():
    # baseline − MHD over 3 seeds: differences 1, 2, 3 points → 2 ± 2.48, straddles 2.4
    gap = paired_interval([91.0, 92.0, 93.0], [90.0, 90.0, 90.0])
    v = at_most(gap, 2.4, what="baseline − MHD", unit=" points", fmt=".1f")
    assert v.verdict == INCONCLUSIVE and v.interval == "2.0 [-0.5, 4.5]"
    assert v.rule.startswith("holds if the 95% t-interval of baseline − MHD over 3 seeds lies at or below 2.4 points")
    tight = paired_interval([91.0, 92.0, 93.0], [90.0, 91.1, 91.9])  # differences 1.0, 0.9, 1.1
    assert at_most(tight, 2.4).verdict == HOLDS


@pytest.mark.parametrize("lo, hi, expected", [(0.4, 0.6, HOLDS), (0.7, 0.9, FAILS), (-0.5, -0.1, FAILS),
                                              (0.5, 0.8, INCONCLUSIVE), (-0.5, 0.5, INCONCLUSIVE)])
def test_within(lo, hi, expected):
    assert within(_iv(lo, hi), 0.0, 0.6).verdict == expected


def test_single_seed_is_decided_but_marked():
    v = at_least(0.9, 0.8)
    assert v.verdict == "holds (1 seed)" and v.kind == HOLDS and v.seeds == 1
    assert "holds if the value of the quantity from 1 seed (no interval) lies at or above 0.800" in v.rule
    assert at_least(seed_interval([0.7]), 0.8).verdict == "does not hold here (1 seed)"
    strict = at_least(0.9, 0.8, min_seeds=3)
    assert strict.kind == INCONCLUSIVE and "1 seed < 3 required" in strict.verdict
    assert at_least(_iv(0.85, 0.95), 0.8, min_seeds=3).verdict == HOLDS


def test_combine():
    h, f, i = (Verdict(k, f"rule {k}", "x", 3) for k in (HOLDS, FAILS, INCONCLUSIVE))
    assert combine({"a": h, "b": h}).verdict == HOLDS
    assert combine({"a": f, "b": f}).verdict == FAILS
    assert combine({"a": i, "b": i}).verdict == INCONCLUSIVE
    part = combine({"accuracy near baseline": h, "cost flat in L": f})
    assert part.verdict == "partly (fails: cost flat in L)" and part.kind == PARTLY
    assert "accuracy near baseline: rule holds" in part.rule and "cost flat in L: rule does not hold here" in part.rule
    assert combine({"a": h, "b": i, "c": f}).verdict == "partly (fails: c; inconclusive: b)"
    assert combine({"a": f, "b": i}).verdict == "does not hold here (inconclusive: b)"
    one = combine({"a": h, "b": Verdict("holds (1 seed)", "r", "x", 1)})
    assert one.verdict == "holds (1 seed)" and one.seeds == 1
    assert combine({"a": Verdict(NOT_RUN, "r"), "b": Verdict(NOT_RUN, "r")}).verdict == NOT_RUN
    assert combine({"a": h, "b": Verdict(NOT_RUN, "r")}).verdict == "partly (not run: b)"


def test_adequacy_gate_under_trained_baseline():
    verdict = at_most(_iv(0.5, 1.5), 2.4)  # holds on its own
    baseline = seed_interval([81.5, 82.0, 82.5])  # 82.0 [80.8, 83.2]
    gated = adequacy_gate(verdict, baseline, 89.0, what="784-300-10 MLP test accuracy",
                          source="Fashion-MNIST benchmark, MLPClassifier")
    assert gated.verdict == "inconclusive (baseline under-trained: 82.0% < 89.0%)"
    assert gated.kind == INCONCLUSIVE and gated.interval == verdict.interval
    assert "Fashion-MNIST benchmark, MLPClassifier" in gated.rule and "89.0%" in gated.rule
    failing = at_most(_iv(3.0, 4.0), 2.4)
    assert adequacy_gate(failing, baseline, 89.0, "acc", "src").kind == INCONCLUSIVE  # not forced either way


def test_adequacy_gate_passes_an_adequate_baseline():
    verdict = at_most(_iv(3.0, 4.0), 2.4)
    near = seed_interval([88.0, 89.0, 89.5])  # mean below 89, but the upper end reaches it: not gated
    kept = adequacy_gate(verdict, near, 89.0, "acc", "src")
    assert kept.verdict == FAILS and "gated" in kept.rule
    assert adequacy_gate(Verdict(NOT_RUN, "r"), 50.0, 89.0, "acc", "src").verdict == NOT_RUN
    assert adequacy_gate(at_least(0.9, 0.8), 50.0, 89.0, "acc", "src").verdict == \
        "inconclusive (baseline under-trained: 50.0% < 89.0%; 1 seed)"


@pytest.mark.parametrize("lo, hi, expected", [(1.0, 1.3, HOLDS), (1.7, 2.0, FAILS), (1.3, 1.45, INCONCLUSIVE),
                                              (1.4, 1.6, INCONCLUSIVE)])
def test_timing_rule_below(lo, hi, expected):
    # goal: ratio below 1.5 with a 10% band (1.364 – 1.65)
    v = timing_rule(_iv(lo, hi), 1.5, "below", noise_band=0.10, what="ED time at L=32 / L=4")
    assert v.verdict == expected and "10% noise band" in v.rule


def test_timing_rule_above():
    assert timing_rule(_iv(2.5, 3.0), 2.0, "above").verdict == HOLDS
    assert timing_rule(_iv(1.0, 1.5), 2.0, "above").verdict == FAILS
    assert timing_rule(_iv(2.1, 3.0), 2.0, "above").verdict == INCONCLUSIVE  # 2.1 lies in the band (≤ 2.2)
    with pytest.raises(ValueError):
        timing_rule(_iv(1.0, 1.1), 2.0, "faster")


def test_rule_on_a_hand_made_table():
    per_seed = pd.DataFrame({"seed": [0, 1, 2], "phase1 MHD": [0.80, 0.82, 0.81], "phase2 MHD": [0.86, 0.87, 0.88]})
    gain = paired_interval(per_seed.set_index("seed")["phase2 MHD"], per_seed.set_index("seed")["phase1 MHD"])
    assert at_least(gain, 0.0, what="phase2 − phase1 MHD").verdict == HOLDS
    summary = summarise_seeds(per_seed, by=[], values=["phase2 MHD"])
    row = summary.iloc[0]
    iv = Interval(row["phase2 MHD mean"], row["phase2 MHD std"], row["phase2 MHD lo"], row["phase2 MHD hi"],
                  int(row["seeds"]))
    assert at_least(iv, 0.90).verdict == FAILS and at_least(iv, 0.86).verdict == INCONCLUSIVE


def test_as_row():
    v = at_least(_iv(2.0, 3.0), 1.0)
    assert v.as_row() == {"verdict": HOLDS, "rule": v.rule, "interval": "2.500 [2.000, 3.000]", "seeds": 3}
    with pytest.raises(ValueError):
        Verdict("maybe", "r").kind


def test_combine_reads_inconclusive_and_not_run_parts_as_inconclusive():
    inc, nr = Verdict(INCONCLUSIVE, "r", "1 [0, 2]", 3), Verdict(NOT_RUN, "r")
    v = combine({"a": inc, "b": nr})
    assert v.verdict == "inconclusive (not run: b)" and v.seeds == 3
    assert combine({"a": inc, "b": Verdict(FAILS, "r", "", 3), "c": nr}).verdict == "does not hold here (inconclusive: a; not run: c)"


def test_reader_reads_its_tables_then_the_results_folder_else_file_not_found(tmp_path):
    import pandas as pd

    from llcpkg.results import write_table
    from llcpkg.verdicts import reader

    own = pd.DataFrame({"a": [1]})
    write_table(pd.DataFrame({"b": [2]}), "other", tmp_path)
    t = reader({"mine": own}, tmp_path)
    assert t("mine") is own and t("other")["b"].tolist() == [2]
    with pytest.raises(FileNotFoundError, match="no table absent.csv"):
        t("absent")
    with pytest.raises(FileNotFoundError):
        reader({"mine": own})("other")
