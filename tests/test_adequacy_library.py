"""Library pieces of the adequacy study (notebook 08): scaled stage configs, random shifts in the
training loader, the per-class validation split, references read from a longer run, error-bar lines."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from llcpkg import train
from llcpkg.data import DataBundle, ShiftedTensorDataset, class_holdout, shift_batch, with_shifts
from llcpkg.pipeline import scaled_configs, stage_configs
from llcpkg.references import REFERENCES, LongerRun, gate, reference
from llcpkg.seeds import summary_table
from llcpkg.verdicts import HOLDS, INCONCLUSIVE, at_least


# ----------------------------------------------------------------------------- scaled_configs
def test_scaled_configs_multiplies_the_chosen_stages_and_factor_one_is_the_same(toy_profile):
    cfgs = stage_configs(replace(toy_profile, baseline_epochs=2, phase1_epochs=3, phase2_epochs=1), 256)
    assert scaled_configs(cfgs, 1) == cfgs  # equal frozen configs: equal cache keys (notebook 01's stages)
    x4 = scaled_configs(cfgs, 4)
    assert [x4[s].epochs for s in ("baseline", "phase1", "phase2")] == [8, 12, 4]
    assert x4["phase1"] == replace(cfgs["phase1"], epochs=12)  # nothing but the epochs changes
    only2 = scaled_configs(cfgs, 4, stages=("phase2",))
    assert (only2["baseline"], only2["phase1"], only2["phase2"].epochs) == (cfgs["baseline"], cfgs["phase1"], 4)


@pytest.mark.parametrize("factor", [0, -1, 1.5, True])
def test_scaled_configs_rejects_a_bad_factor(toy_profile, factor):
    with pytest.raises(ValueError, match="factor"):
        scaled_configs(stage_configs(toy_profile, 256), factor)


def test_scaled_configs_rejects_an_unknown_stage(toy_profile):
    with pytest.raises(KeyError, match="phase3"):
        scaled_configs(stage_configs(toy_profile, 256), 2, stages=("phase3",))


# ----------------------------------------------------------------------------- shifts
def _dot_images(n: int, size: int = 9) -> torch.Tensor:
    x = torch.zeros(n, 1, size, size)
    x[:, 0, size // 2, size // 2] = 1.0
    return x


def test_shift_batch_moves_each_image_by_at_most_max_shift_and_covers_every_offset():
    x = _dot_images(400)
    out = shift_batch(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and (out.sum(dim=(1, 2, 3)) == 1).all()  # the dot is moved, never lost
    pos = out[:, 0].flatten(1).argmax(1)
    dy, dx = pos // 9 - 4, pos % 9 - 4
    assert dy.abs().max() == 2 and dx.abs().max() == 2
    assert len(set(zip(dy.tolist(), dx.tolist()))) == 25  # every (dy, dx) in [-2, 2]² is drawn


def test_shift_batch_is_seeded_keeps_a_blank_background_and_zero_is_the_identity():
    x = torch.randn(16, 1, 8, 8)
    a = shift_batch(x, 1, torch.Generator().manual_seed(3))
    assert torch.equal(a, shift_batch(x, 1, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, shift_batch(x, 1, torch.Generator().manual_seed(4)))
    flat = torch.full((4, 1, 8, 8), -0.4)  # a normalised blank image: replicate padding keeps it blank
    assert torch.equal(shift_batch(flat, 2, torch.Generator().manual_seed(0)), flat)
    assert shift_batch(x, 0, torch.Generator()) is x
    with pytest.raises(ValueError):
        shift_batch(x, -1, torch.Generator())


def test_with_shifts_augments_training_batches_only(toy_bundle):
    aug = with_shifts(toy_bundle, 1)
    assert aug.name == "toy-shift1" and aug.test is toy_bundle.test
    assert isinstance(aug.train, ShiftedTensorDataset) and torch.equal(aug.train.tensors[0], toy_bundle.train.tensors[0])
    cfg = train.TrainConfig(batch_size=64, seed=1)
    plain = [x for x, _, _ in train._epoch_batches(toy_bundle.train, cfg, 0, None)]
    shifted = [x for x, _, _ in train._epoch_batches(aug.train, cfg, 0, None)]
    assert all(p.shape == s.shape for p, s in zip(plain, shifted)) and not torch.equal(plain[0], shifted[0])
    again = [x for x, _, _ in train._epoch_batches(aug.train, cfg, 0, None)]
    assert all(torch.equal(s, a) for s, a in zip(shifted, again))  # seeded by (seed, epoch): a resume redraws the same
    evaluated = next(train.iterate_batches(aug.train, 64, shuffle=False))[0]
    assert torch.equal(evaluated, toy_bundle.train.tensors[0][:64])  # evaluation sees the original images


def test_with_shifts_needs_an_in_memory_split(toy_bundle):
    from torch.utils.data import Subset

    lazy = replace(toy_bundle, train=Subset(toy_bundle.train, list(range(10))))
    with pytest.raises(TypeError, match="in-memory"):
        with_shifts(lazy, 2)


# ----------------------------------------------------------------------------- class_holdout
def _bundle(counts: list[int]) -> DataBundle:
    y = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    x = torch.arange(len(y), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    test = TensorDataset(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2]))
    return DataBundle("hand", TensorDataset(x, y), test, [f"c{i}" for i in range(len(counts))], None, (1, 2, 2))


def test_class_holdout_takes_the_share_of_every_class_and_keeps_one():
    data = _bundle([15, 15, 5, 1])
    val = class_holdout(data, 0.2, seed=0)
    held_y, kept_y = val.test.tensors[1].numpy(), val.train.tensors[1].numpy()
    assert np.bincount(held_y, minlength=4).tolist() == [3, 3, 1, 0]  # round(0.2 · n), a lone image stays in training
    assert np.bincount(kept_y, minlength=4).tolist() == [12, 12, 4, 1]
    ids = lambda ds: set(ds.tensors[0][:, 0, 0, 0].int().tolist())  # each image's index in the training split
    assert ids(val.train).isdisjoint(ids(val.test)) and ids(val.train) | ids(val.test) == set(range(36))
    assert val.name == "hand-val0.2" and val.class_names == data.class_names


def test_class_holdout_is_fixed_by_its_seed():
    data = _bundle([15, 15, 15])
    a, b, c = (class_holdout(data, 0.2, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.test.tensors[0], b.test.tensors[0]) and not torch.equal(a.test.tensors[0], c.test.tensors[0])
    with pytest.raises(ValueError):
        class_holdout(data, 1.0)


# ----------------------------------------------------------------------------- references from a longer run
def _trend(baselines: dict[int, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"seed": s, "dataset": "omniglot", "epochs factor": f, "baseline": b}
                         for f, values in baselines.items() for s, b in enumerate(values)])


def test_the_omniglot_reference_is_the_longest_runs_mean_baseline():
    tables = {"adequacy_trend": _trend({1: [0.80, 0.81, 0.82], 4: [0.90, 0.91, 0.92]})}
    ref = reference("smallcnn/omniglot", tables.__getitem__)
    assert ref.value == pytest.approx(0.91) and ref.threshold == pytest.approx(0.89)
    assert "epochs factor = 4" in ref.source and "3 run(s)" in ref.source
    with pytest.raises(LookupError, match="no tables given"):
        reference("smallcnn/omniglot")


def test_the_omniglot_gate_reads_the_table_and_is_off_while_it_is_missing():
    tables = {"adequacy_trend": _trend({1: [0.80, 0.81, 0.82], 2: [0.90, 0.91, 0.92]})}.__getitem__
    v = at_least(0.95, 0.9, "acc")
    from llcpkg.stats import seed_interval

    under = gate(v, seed_interval([0.80, 0.81, 0.82]), "smallcnn/omniglot", tables)
    assert under.kind == INCONCLUSIVE and "baseline under-trained: 81.0% < 89.0%" in under.verdict
    assert gate(v, seed_interval([0.88, 0.90, 0.92]), "smallcnn/omniglot", tables).kind == HOLDS  # straddles: passes

    def missing(name):
        raise FileNotFoundError(f"no table {name}")

    off = gate(v, 0.5, "smallcnn/omniglot", missing)
    assert off.verdict == v.verdict and "not gated" in off.rule and "adequacy_trend" in off.rule


def test_a_trend_of_x1_alone_is_no_longer_run_and_the_gate_says_so():
    tables = {"adequacy_trend": _trend({1: [0.80, 0.81, 0.82]})}.__getitem__  # the quick look's notebook 08
    with pytest.raises(LookupError, match="no run longer than ×1"):
        reference("smallcnn/omniglot", tables)
    v = at_least(0.95, 0.9, "acc")
    off = gate(v, 0.81, "smallcnn/omniglot", tables)  # not gated against itself: never forced either way
    assert off.verdict == v.verdict and "not gated" in off.rule and "longer than ×1" in off.rule
    from llcpkg.experiments import adequacy

    assert "no adequacy reference" in adequacy.describe_reference(tables)  # notebook 08's reading of it
    longer = {"adequacy_trend": _trend({1: [0.80, 0.81, 0.82], 2: [0.90, 0.91, 0.92]})}.__getitem__
    assert "91.0%" in adequacy.describe_reference(longer) and "from 89.0%" in adequacy.describe_reference(longer)


def test_the_omniglot_gate_fails_loudly_on_a_renamed_column():
    df = _trend({1: [0.8, 0.8, 0.8]}).rename(columns={"baseline": "base"})
    with pytest.raises(KeyError, match="baseline"):
        gate(at_least(0.95, 0.9), 0.8, "smallcnn/omniglot", {"adequacy_trend": df}.__getitem__)


def test_the_longer_run_reference_names_notebook_08s_columns():
    from llcpkg.experiments import adequacy

    ref = REFERENCES["smallcnn/omniglot"]
    assert isinstance(ref, LongerRun)
    assert (ref.table, ref.column, ref.length) == (adequacy.TREND, adequacy.BASELINE, adequacy.LENGTH)


def test_summary_lines_draws_the_interval_as_error_bars():
    from llcpkg.plots import summary_lines

    per_seed = pd.DataFrame({"seed": [0, 1, 0, 1], "x": [1, 1, 2, 2], "acc": [0.5, 0.7, 0.8, 0.8]})
    fig = summary_lines(summary_table(per_seed, ["x"], ["acc"]), "x", ["acc"], "accuracy", "t")
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    assert line.get_xdata().tolist() == [1, 2] and line.get_ydata().tolist() == pytest.approx([0.6, 0.8])
    assert ax.get_title() == "t" and ax.get_legend().get_texts()[0].get_text() == "acc"


# ----------------------------------------------------------------------------- feature_dim
def test_feature_dim_sets_the_small_cnns_d_and_leaves_old_cache_keys_alone(toy_profile):
    from llcpkg.cache import stage_key
    from llcpkg.models import ModelConfig, build_model

    cfg = toy_profile.model_config("llc", 4)
    assert cfg == ModelConfig("smallcnn", 8, "llc", 4, toy_profile.logit_scale)  # feature_dim None by default
    wide = replace(toy_profile, feature_dim=40).model_config("llc", 4)
    model = build_model(wide, 1, 4)
    assert model.backbone.out_dim == 40 and model.head.projector.weight.shape == (4, 40)
    assert model.features(torch.randn(2, 1, 8, 8)).shape == (2, 40)
    assert build_model(cfg, 1, 4).backbone.out_dim == 32  # 4 · width
    old = stage_key(model={"backbone": "smallcnn", "width": 8, "head": "llc", "bits": 4,
                           "logit_scale": toy_profile.logit_scale})
    assert stage_key(model=cfg) == old and stage_key(model=wide) != old
    with pytest.raises(ValueError):
        ModelConfig(feature_dim=0)
