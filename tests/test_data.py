"""Data loaders: clear errors when data are missing, the Omniglot subset's structure."""
import os

import pytest

from llcpkg.data import load_dataset, split_classes, subset, toy_bundle

OMNIGLOT = os.environ.get("LLC_OMNIGLOT_ROOT")


def test_missing_fashion_mnist_names_the_fix(tmp_path, monkeypatch):
    import llcpkg.data as D

    monkeypatch.setattr(D, "DEBIAN_FMNIST", tmp_path / "nowhere")
    monkeypatch.setattr(D, "DOWNLOAD_CACHE", tmp_path / "cache")
    monkeypatch.delenv("LLC_FMNIST_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_dataset("fashion_mnist", download=False)


def test_missing_omniglot_names_the_env_var(tmp_path, monkeypatch):
    import llcpkg.data as D

    monkeypatch.setattr(D, "DOWNLOAD_CACHE", tmp_path / "cache")
    monkeypatch.delenv("LLC_OMNIGLOT_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="LLC_OMNIGLOT_ROOT"):
        load_dataset("omniglot", root=tmp_path, download=False)


def test_corrupt_omniglot_archive_is_detected(tmp_path):
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        (tmp_path / name).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt"):
        load_dataset("omniglot", root=tmp_path, download=False)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("mnist-but-not-really")


@pytest.mark.skipif(not OMNIGLOT, reason="LLC_OMNIGLOT_ROOT not set")
def test_omniglot_subset_structure():
    b = load_dataset("omniglot", root=OMNIGLOT)
    assert b.num_classes == 242 and len(b.groups) == 8
    assert len(b.train) == 242 * 15 and len(b.test) == 242 * 5
    assert set(b.train.tensors[1].tolist()) == set(range(242)) == set(b.test.tensors[1].tolist())
    assert sorted(c for m in b.groups.values() for c in m) == list(range(242))


def test_fashion_mnist_shapes():
    try:
        b = load_dataset("fashion_mnist", download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed")
    assert b.train.tensors[0].shape == (60000, 1, 28, 28) and len(b.test) == 10000
    assert b.class_to_group().tolist() == [0, 2, 0, 3, 0, 1, 0, 1, 4, 1]


def test_subset_and_split_classes():
    b = toy_bundle(n_train=100, n_test=50, num_classes=4)
    s = subset(b, 40, 20, seed=0)
    assert len(s.train) == 40 and len(s.test) == 20
    ind, ood = split_classes(b, [1])
    assert ind.num_classes == 3 and set(ind.train.tensors[1].tolist()) <= {0, 1, 2}
    assert set(ood.tensors[1].tolist()) == {1}
    with pytest.raises(ValueError):
        split_classes(b, [7])


def test_image_folder_augmentation_is_a_setting(tmp_path):
    """Without augmentation a training image loads the same every time, and the setting is
    visible on the splits and in the set's name (so cache keys differ)."""
    import torch
    from PIL import Image

    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            Image.fromarray((torch.rand(12, 12, 3) * 255).byte().numpy()).save(tmp_path / split / c / "0.png")
    plain = load_dataset("imagefolder", root=tmp_path, size=12, augment=False)
    torch.manual_seed(0)
    assert torch.equal(plain.train[0][0], plain.train[0][0]) and plain.train[0][0].shape == (3, 12, 12)
    assert plain.train.augment is False and plain.test.augment is False and plain.name.endswith("-noaug")
    aug = load_dataset("imagefolder", root=tmp_path, size=12)
    assert aug.train.augment is True and aug.name == tmp_path.name
    assert not all(torch.equal(aug.train[0][0], aug.train[0][0]) for _ in range(5))  # random crops and flips
