"""Class-balanced batches (llcpkg.data.class_balanced_batches, TrainConfig.per_class): hand-checked
shapes, every batch holds m classes × n images, classes and images visited in balanced rounds, the
same steps per epoch as plain shuffling, and unchanged cache keys when unused."""
from collections import Counter

import numpy as np
import pytest
import torch

from llcpkg.cache import stage_key
from llcpkg.data import balanced_batch_shape, class_balanced_batches, toy_bundle
from llcpkg.hashing import HashingConfig, train_hashing
from llcpkg.models import ModelConfig
from llcpkg.train import TrainConfig, train_baseline


def test_batch_shape_hand_computed():
    assert balanced_batch_shape(10, 256, 8) == (10, 25)  # Fashion-MNIST: every class, 25 each
    assert balanced_batch_shape(242, 256, 8) == (32, 8)  # the Omniglot subset
    assert balanced_batch_shape(4, 10, 8) == (1, 10)  # fewer than per_class fit: one class
    with pytest.raises(ValueError):
        balanced_batch_shape(4, 10, 0)


def test_batches_hold_m_classes_of_n_images_in_balanced_rounds():
    labels = np.repeat(np.arange(5), 6)  # 5 classes × 6 images
    batches = list(class_balanced_batches(labels, 8, 2, steps=15, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == 15
    for b in batches:
        counts = Counter(labels[b.numpy()].tolist())
        assert len(b) == 8 and len(counts) == 4 and set(counts.values()) == {2}
    picks = Counter(labels[torch.cat(batches).numpy()].tolist())
    assert set(picks.values()) == {24}  # 15 batches × 4 classes = 60 picks: 12 per class, 2 images each
    for c in range(5):  # each class's 6 images drawn without replacement within a round: each exactly 4 times
        drawn = Counter(i for b in batches for i in b.tolist() if labels[i] == c)
        assert set(drawn.values()) == {4} and len(drawn) == 6


def test_batches_are_deterministic_given_the_generator():
    labels = np.repeat(np.arange(3), 4)
    a, b = (list(class_balanced_batches(labels, 4, 2, 5, torch.Generator().manual_seed(3))) for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_unused_per_class_leaves_cache_keys_and_set_changes_them():
    assert stage_key(train=TrainConfig()) == stage_key(train=TrainConfig(per_class=None))
    assert stage_key(train=TrainConfig()) != stage_key(train=TrainConfig(per_class=8))
    with pytest.raises(ValueError):
        TrainConfig(per_class=0)


def test_hashnet_on_balanced_batches_takes_the_steps_of_plain_shuffling(tmp_path):
    data = toy_bundle(n_train=100, n_test=20, num_classes=4, seed=0)
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=32)
    base = train_baseline(data, ModelConfig(width=4), cfg, tmp_path)
    trained = train_hashing(data, HashingConfig("hashnet", 8), TrainConfig(epochs=2, lr=0.05, batch_size=32, per_class=8),
                            base, tmp_path)
    assert int(trained.model.head.step) == 2 * 4  # 2 epochs × ceil(100 / 32) steps
