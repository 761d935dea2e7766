import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("LLC_TEST_THREADS", "2")))


@pytest.fixture
def toy_bundle():
    """A tiny separable image problem: 4 classes, each a bright 2×2 patch in its own corner of an 8×8 image."""
    from llcpkg.data import toy_bundle

    return toy_bundle(n_train=256, n_test=128, num_classes=4, seed=0)


@pytest.fixture
def toy_profile():
    """The smoke profile with one epoch per stage on any data size (epoch_reference 1: no
    scaling up for small sets) and one retrieval epoch."""
    from dataclasses import replace

    from llcpkg.profiles import get_profile

    return replace(get_profile("smoke"), baseline_epochs=1, phase1_epochs=1, phase2_epochs=1, retrieval_epochs=1,
                   epoch_reference=1)


@pytest.fixture
def quick_llc(tmp_path, monkeypatch, toy_profile):
    """For end-to-end tests of pipelines built on ``run_llc``: the toy profile (returned),
    checkpoints cached in a temporary folder, and one torch thread (tiny models run faster
    on one, much faster on a shared, busy CPU)."""
    monkeypatch.setenv("LLC_CACHE", str(tmp_path))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield toy_profile
    torch.set_num_threads(threads)
