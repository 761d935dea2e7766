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
def quick_llc(tmp_path, monkeypatch):
    """For end-to-end tests of pipelines built on ``run_llc``: one epoch per stage, checkpoints
    cached in a temporary folder, and one torch thread (tiny models run faster on one,
    much faster on a shared, busy CPU)."""
    from dataclasses import replace

    from llcpkg import experiments

    configs = experiments.stage_configs
    monkeypatch.setenv("LLC_CACHE", str(tmp_path))
    monkeypatch.setattr(experiments, "stage_configs",
                        lambda P, n, seed=0: {k: replace(c, epochs=1) for k, c in configs(P, n, seed).items()})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
