"""Profiles: the one profile → epochs rule, and the settings every stage reads from a profile."""
from dataclasses import replace

import pytest

from llcpkg.models import DEFAULT_LOGIT_SCALE, LOGIT_SCALES, LLCHead, ModelConfig
from llcpkg.pipeline import stage_configs
from llcpkg.profiles import EPOCH_RULES, Profile, get_profile, llc_epoch_split, scaled_epochs, stage_epochs


def test_scaled_epochs_by_hand():
    assert scaled_epochs(3, 60_000) == 3 and scaled_epochs(3, 100_000) == 3
    assert scaled_epochs(3, 20_000) == 9  # 60k / 20k = 3 × as many
    assert scaled_epochs(2, 100) == 24  # capped at 12 ×
    assert scaled_epochs(2, 100, reference=1) == 2


def test_stage_epochs_rules_of_the_cpu_profile():
    P = get_profile("cpu")  # baseline 5, phase 1 4, phase 2 3, retrieval 3
    want = {"baseline": 5, "phase1": 4, "phase2": 3, "features": 10, "retrieval": 3, "mlp": 2, "cnn": 4}
    assert {r: stage_epochs(P, r) for r in want} == want
    assert set(EPOCH_RULES) == set(want)
    assert stage_epochs(P, "phase1", 12_000) == 20  # 4 × round(60k / 12k)
    with pytest.raises(ValueError, match="epoch rule"):
        stage_epochs(P, "phase3")


def test_stage_configs_take_epochs_and_phase2_lr_from_the_profile():
    P = replace(get_profile("smoke"), phase2_lr=0.03, epoch_reference=1)
    cfgs = stage_configs(P, 500)
    assert [cfgs[s].epochs for s in ("baseline", "phase1", "phase2")] == [1, 1, 1]
    assert cfgs["phase2"].lr == 0.03 and cfgs["phase1"].lr == P.lr


def test_llc_epoch_split():
    assert llc_epoch_split(3) == (2, 1) and llc_epoch_split(1) == (1, 1) and llc_epoch_split(9) == (6, 3)


def test_logit_scale_has_one_default():
    assert LLCHead(4, 3, 2).scale == LOGIT_SCALES[DEFAULT_LOGIT_SCALE](2)
    assert ModelConfig().logit_scale == DEFAULT_LOGIT_SCALE
    assert Profile("p", None, None, 1, 1, 1, 8, 4).logit_scale == DEFAULT_LOGIT_SCALE
    assert get_profile("imagenet").logit_scale == "none"  # the official recipe, a field of its profile
    m = get_profile("cpu").model_config("llc", 8)
    assert (m.head, m.bits, m.logit_scale, m.width) == ("llc", 8, get_profile("cpu").logit_scale, 16)
