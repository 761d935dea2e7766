import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("LLC_TEST_THREADS", "2")))


@pytest.fixture
def toy_bundle():
    """A tiny separable image problem: 4 classes, each a bright 2×2 patch in its own corner of an 8×8 image."""
    from llcpkg.data import toy_bundle

    return toy_bundle(n_train=256, n_test=128, num_classes=4, seed=0)
