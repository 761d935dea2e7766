"""The compression experiment's config (llcpkg.experiments.compression), its choices on
validation and every claim rule on hand-made per-seed tables with known answers."""
import numpy as np
import pandas as pd
import pytest

from llcpkg.references import REFERENCES

from llcpkg.experiments import compression as X
from llcpkg.profiles import get_profile
from llcpkg.references import REFERENCES
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE, PARTLY

SEEDS = (0, 1, 2)


def test_config_resolves_seeds_and_builds_the_papers_nets(monkeypatch):
    monkeypatch.delenv("LLC_SEEDS", raising=False)
    cfg = X.CompressionExperiment.for_profile(get_profile("cpu"), hfh_hashes=8, mlp3_epochs=[3, 6])
    assert cfg.seeds == (0, 1, 2) and cfg.mlp3.hidden == (1000,) and cfg.mlp5.hidden == (100, 100, 100)
    assert cfg.epoch_choices("mlp3") == (3, 6) and cfg.epoch_choices("mlp5") == (5, 10, 20)
    h = cfg.comp("hfh", 1 / 8, seed=2)
    assert (h.method, h.factor, h.hashes, h.depth, h.seed) == ("hfh", 1 / 8, 8, 2, 2)
    assert X.CompressionExperiment.for_profile(get_profile("smoke"), seeds=[4]).seeds == (4,)


def test_epoch_and_lr_choices_by_hand():
    ep = pd.DataFrame({"net": ["a"] * 3 + ["b"] * 3, "epochs": [2, 4, 8] * 2,
                       "val_accuracy": [0.80, 0.876, 0.880, 0.70, 0.80, 0.79]})
    assert ep.assign(chosen=X.pick_epochs(ep)["chosen"]).query("chosen")["epochs"].tolist() == [4, 4]
    lr = pd.DataFrame({"net": "a", "method": ["hfh", "hfh", "hashednets", "hashednets"], "lr": [0.1, 0.03, 0.1, 0.03],
                       "val_accuracy": [0.10, 0.80, 0.85, 0.85]})
    assert X.pick_lrs(lr)["chosen"].tolist() == [False, True, True, False]  # a tie goes to the larger rate
    with pytest.raises(KeyError):
        X.pick_epochs(ep.drop(columns="val_accuracy"))


# ----------------------------------------------------------------------------- hand-made per-seed tables
def _grid(hfh, hashednets, pruning, pruning_bytes, dense_acc=None, net="mlp3", factor=1 / 8):
    """A per-seed grid of one net at one factor: test errors per seed of each method."""
    rows = []
    if dense_acc is None:  # adequately trained: just above the reference's gate
        dense_acc = (REFERENCES[X.REFERENCE_KEYS[net]].threshold + 0.01,) * 3
    for s, a in zip(SEEDS, dense_acc):
        rows.append({"seed": s, "net": net, "method": "dense", "factor": 1.0, "error": 1 - a, "bytes": 400.0})
    for method, errs, b in [("hfh", hfh, 100.0), ("hashednets", hashednets, 100.0), ("pruning", pruning, 150.0),
                            (X.PRUNING_BYTES, pruning_bytes, 100.0)]:
        rows += [{"seed": s, "net": net, "method": method, "factor": factor, "error": e, "bytes": b}
                 for s, e in zip(SEEDS, errs)]
    return pd.DataFrame(rows)


def _verdict(rows):
    assert len(rows) == 1
    return rows[0]["verdict"]


def test_hfh_vs_hashednets_rule():
    lower = _grid([0.10, 0.11, 0.12], [0.12, 0.13, 0.14], [0.1] * 3, [0.1] * 3)
    assert _verdict(X.hfh_vs_hashednets_rows(lower)) == HOLDS
    higher = _grid([0.12, 0.13, 0.14], [0.10, 0.11, 0.12], [0.1] * 3, [0.1] * 3)
    assert _verdict(X.hfh_vs_hashednets_rows(higher)) == FAILS
    straddle = _grid([0.10, 0.13, 0.12], [0.11, 0.12, 0.12], [0.1] * 3, [0.1] * 3)  # differences −1, +1, 0 points
    assert _verdict(X.hfh_vs_hashednets_rows(straddle)) == INCONCLUSIVE
    weak = _grid([0.10, 0.11, 0.12], [0.12, 0.13, 0.14], [0.1] * 3, [0.1] * 3, dense_acc=(0.80, 0.81, 0.82))
    gate = 100 * REFERENCES[X.REFERENCE_KEYS["mlp3"]].threshold
    assert _verdict(X.hfh_vs_hashednets_rows(weak)).startswith(f"inconclusive (baseline under-trained: 81.0% < {gate:.1f}%")
    with pytest.raises(KeyError):
        X.hfh_vs_hashednets_rows(lower.rename(columns={"error": "err"}))


def test_hfh_vs_pruning_rule_has_an_equal_factor_and_an_equal_bytes_part():
    within = _grid([0.105, 0.115, 0.125], [0.2] * 3, [0.10, 0.11, 0.12], [0.10, 0.11, 0.12])  # +0.5 points ≤ 1
    assert _verdict(X.hfh_vs_pruning_rows(within)) == HOLDS
    worse_at_bytes = _grid([0.105, 0.115, 0.125], [0.2] * 3, [0.10, 0.11, 0.12], [0.08, 0.09, 0.10])  # +2.5 points
    assert _verdict(X.hfh_vs_pruning_rows(worse_at_bytes)) == "partly (fails: 1/8 equal bytes)"
    far = _grid([0.15, 0.16, 0.17], [0.2] * 3, [0.10, 0.11, 0.12], [0.10, 0.11, 0.12])
    assert _verdict(X.hfh_vs_pruning_rows(far)) == FAILS
    straddle = _grid([0.10, 0.13, 0.12], [0.2] * 3, [0.10, 0.11, 0.12], [0.10, 0.11, 0.12])  # 0, +2, 0 points
    assert _verdict(X.hfh_vs_pruning_rows(straddle)) == INCONCLUSIVE
    weak = _grid([0.105, 0.115, 0.125], [0.2] * 3, [0.10, 0.11, 0.12], [0.10, 0.11, 0.12], dense_acc=(0.7,) * 3)
    assert _verdict(X.hfh_vs_pruning_rows(weak)).startswith("inconclusive (baseline under-trained")


def _sweep(errors_by_u, along="hashes"):
    """A per-seed sweep of mlp5 at 1/64: errors_by_u maps a U (or depth) to its errors per seed."""
    rows = []
    for v, errs in errors_by_u.items():
        u, d = (v, 2) if along == "hashes" else (4, v)
        rows += [{"seed": s, "net": "mlp5", "method": "hfh", "factor": 1 / 64, "hashes": u, "depth": d, "error": e}
                 for s, e in zip(SEEDS, errs)]
    return pd.DataFrame(rows)


DENSE5 = _grid([0.1] * 3, [0.1] * 3, [0.1] * 3, [0.1] * 3, net="mlp5")


def test_more_hashes_rule_with_a_noise_band():
    falls = _sweep({1: [0.20, 0.21, 0.22], 2: [0.19, 0.20, 0.21], 4: [0.18, 0.19, 0.20], 8: [0.17, 0.18, 0.19]})
    assert _verdict(X.more_hashes_rows(falls, DENSE5)) == HOLDS
    flat = _sweep({1: [0.20, 0.21, 0.22], 2: [0.20, 0.21, 0.22], 4: [0.20, 0.21, 0.22]})
    assert _verdict(X.more_hashes_rows(flat, DENSE5)) == FAILS
    within_band = _sweep({1: [0.200, 0.210, 0.220], 8: [0.198, 0.208, 0.218]})  # falls 0.2 points < 0.3-point band
    assert _verdict(X.more_hashes_rows(within_band, DENSE5)) == FAILS
    noisy = _sweep({1: [0.20, 0.21, 0.22], 8: [0.17, 0.22, 0.20]})  # drops +3, −1, +2 points
    assert _verdict(X.more_hashes_rows(noisy, DENSE5)) == INCONCLUSIVE
    bump = _sweep({1: [0.20, 0.21, 0.22], 2: [0.22, 0.23, 0.24], 8: [0.17, 0.18, 0.19]})  # rises 2 points at 1→2
    assert _verdict(X.more_hashes_rows(bump, DENSE5)) == "partly (fails: no rise hashes 1→2)"
    weak = _grid([0.1] * 3, [0.1] * 3, [0.1] * 3, [0.1] * 3, net="mlp5", dense_acc=(0.6,) * 3)
    assert _verdict(X.more_hashes_rows(falls, weak)).startswith("inconclusive (baseline under-trained")
    with pytest.raises(KeyError):
        X.more_hashes_rows(falls.drop(columns="depth"), DENSE5)


def test_deeper_g_rule_reads_the_depth_sweep_at_the_default_u():
    sweep = pd.concat([_sweep({1: [0.3] * 3, 2: [0.25, 0.26, 0.27], 4: [0.2, 0.21, 0.22]}),
                       _sweep({1: [0.22, 0.23, 0.24], 2: [0.2, 0.21, 0.22], 3: [0.23, 0.24, 0.25]}, along="depth")])
    sweep = sweep.drop_duplicates(["seed", "hashes", "depth"])
    rows = X.deeper_g_rows(sweep, DENSE5)
    assert rows[0]["dataset"] == "fashion_mnist, mlp5, 1/64, hashes 4"
    assert _verdict(rows) == FAILS  # depth 1 → 3: the error rises by 1 point
    assert _verdict(X.more_hashes_rows(sweep, DENSE5)) == HOLDS  # U 1 → 4 at depth 2: falls 6 points


def _runs(hfh_ms, hn_ms, net="mlp3"):
    rows = []
    for r, (a, b) in enumerate(zip(hfh_ms, hn_ms)):
        rows += [{"run": r, "net": net, "model": "hfh", "train_ms": a, "batch": 256},
                 {"run": r, "net": net, "model": "hashednets", "train_ms": b, "batch": 256},
                 {"run": r, "net": net, "model": "dense", "train_ms": 1.0, "batch": 256}]
    return pd.DataFrame(rows)


def test_overhead_rule_on_timing_runs():
    assert _verdict(X.overhead_rows(_runs([10.5, 10.4, 10.6, 10.5], [10.0] * 4))) == HOLDS  # ≈ 1.05 < 1.2 / 1.1
    assert _verdict(X.overhead_rows(_runs([110.0, 112.0, 108.0], [10.0] * 3))) == FAILS  # ≈ 11×
    assert _verdict(X.overhead_rows(_runs([10.0, 15.0, 20.0], [10.0] * 3))) == INCONCLUSIVE  # spans the band
    with pytest.raises(KeyError):
        X.overhead_rows(_runs([10.0], [10.0]).drop(columns="run"))


def test_summaries_give_intervals_beside_the_per_seed_tables():
    grid = _grid([0.10, 0.11, 0.12], [0.12, 0.13, 0.14], [0.1] * 3, [0.1] * 3).assign(hashes=np.nan, depth=np.nan,
                                                                                      train_error=0.05)
    out = X.summaries({X.COMPRESSION: grid})
    s = out[X.COMPRESSION_SUMMARY].set_index("method")
    assert np.isclose(s.loc["hfh", "error mean"], 0.11) and s.loc["hfh", "seeds"] == 3
    assert s.loc["hfh", "error lo"] < 0.11 < s.loc["hfh", "error hi"]


def test_the_quick_look_reuses_the_full_runs_epoch_and_lr_choices(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from llcpkg.results import write_table

    monkeypatch.setenv("LLC_RESULTS", str(tmp_path))
    P = get_profile("cpu")
    full = X.CompressionExperiment.for_profile(P)
    quick = X.CompressionExperiment.for_profile(P, seeds=[0])
    epochs = pd.DataFrame([{X.NET: n, "epochs": e, "val_accuracy": 0.8 + e / 100, "chosen": i == 1}
                           for n in full.nets for i, e in enumerate(full.epoch_choices(n))])
    s = SimpleNamespace(base_cfg=SimpleNamespace(lr=P.lr))  # all the choice reads when it is reused
    lrs = pd.DataFrame([{X.NET: n, X.METHOD: m, "lr": P.lr * f, "val_accuracy": 0.8, "chosen": f == 1.0}
                        for n in full.nets for m in ("hashednets", "hfh") for f in X.LR_SCALES])
    write_table(epochs, X.EPOCHS, tmp_path)
    write_table(lrs, X.LRS, tmp_path)
    assert X.choose_epochs(quick, None).equals(epochs)  # no Setup: a choice made again would fail on it
    got = X.choose_lrs(quick, s, epochs)
    assert got[["lr", "chosen"]].equals(lrs[["lr", "chosen"]])
    with pytest.raises(AttributeError):  # the full run makes its own choice (here: fails on the missing Setup)
        X.choose_epochs(full, None)
    write_table(epochs[epochs[X.NET] == "mlp3"], X.EPOCHS, tmp_path)  # mlp5's candidates missing: chosen again
    with pytest.raises(AttributeError):
        X.choose_epochs(quick, None)
