"""The checkpoint cache cannot lie: verified loads, damaged files moved aside and retrained,
no checkpoint after a non-finite loss, one cache version, content fingerprints."""
import hashlib
import json
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import llcpkg.train as T
from llcpkg import cache
from llcpkg.data import fingerprint, load_image_folder
from llcpkg.models import ModelConfig
from llcpkg.train import NonFiniteLoss, TrainConfig, run_stage, train_baseline

CFG = TrainConfig(epochs=2, lr=0.05, batch_size=32)
MODEL = ModelConfig(width=4)


def _weights(trained):
    return {k: v.clone() for k, v in trained.model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _count_fits(monkeypatch):
    calls = []
    real = T.fit
    monkeypatch.setattr(T, "fit", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


# ----------------------------------------------------------------------------- save / load
def test_checkpoint_is_saved_with_its_sha256_and_loaded_back(tmp_path):
    path = tmp_path / "s-k.pt"
    cache.save_checkpoint(path, {"w": torch.arange(5.0)})
    manifest = json.loads(cache.manifest_path(path).read_text())
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["bytes"] == path.stat().st_size and manifest["cache_version"] == cache.CACHE_VERSION
    assert torch.equal(cache.load_checkpoint(path)["w"], torch.arange(5.0))
    assert cache.is_cached(path)


def _flip_256_bytes(path):
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 256] = bytes(b ^ 0xFF for b in raw[mid:mid + 256])
    path.write_bytes(bytes(raw))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero(path):
    path.write_bytes(b"")


def _drop_manifest(path):  # a checkpoint written by the old code: a bare .pt
    cache.manifest_path(path).unlink()


def _garble_manifest(path):
    cache.manifest_path(path).write_text("{not json")


@pytest.mark.parametrize("damage", [_flip_256_bytes, _truncate, _zero, _drop_manifest, _garble_manifest],
                         ids=["flipped-256-bytes", "truncated", "zero-bytes", "no-manifest", "bad-manifest"])
def test_damaged_checkpoint_is_moved_aside_and_the_stage_retrains(toy_bundle, tmp_path, monkeypatch, damage):
    first = train_baseline(toy_bundle, MODEL, CFG, tmp_path)
    (path,) = tmp_path.glob("baseline-*.pt")
    assert cache.is_cached(path)
    damage(path)
    assert not cache.is_cached(path) and path.exists()  # checking moves nothing
    calls = _count_fits(monkeypatch)
    with pytest.warns(RuntimeWarning, match=r"unusable .*moved to .*\.corrupt"):
        again = train_baseline(toy_bundle, MODEL, CFG, tmp_path)
    assert calls == [1]  # retrained, not loaded
    assert (tmp_path / (path.name + ".corrupt")).exists()
    assert _same(_weights(first), _weights(again))  # same seed: the retrained model is the original
    assert cache.is_cached(path)  # and the new checkpoint is verified
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = train_baseline(toy_bundle, MODEL, CFG, tmp_path)  # now a clean hit
    assert calls == [1] and _same(_weights(first), _weights(third))


def test_flipped_bytes_no_longer_load_as_garbage_weights(toy_bundle, tmp_path):
    """The issue's case: 256 flipped bytes loaded fine and gave weights of ~1e24."""
    good = _weights(train_baseline(toy_bundle, MODEL, CFG, tmp_path))
    (path,) = tmp_path.glob("baseline-*.pt")
    _flip_256_bytes(path)
    with pytest.warns(RuntimeWarning):
        got = _weights(train_baseline(toy_bundle, MODEL, CFG, tmp_path))
    assert max(float(v.abs().max()) for v in got.values() if v.is_floating_point()) < 1e3
    assert _same(good, got)


@pytest.mark.parametrize("damage", [_flip_256_bytes, _zero, _drop_manifest], ids=["flipped", "zero-bytes", "no-manifest"])
def test_damaged_partial_checkpoint_restarts_the_stage(toy_bundle, tmp_path, damage):
    whole = _weights(train_baseline(toy_bundle, MODEL, CFG, tmp_path / "a"))
    train_baseline(toy_bundle, MODEL, CFG, tmp_path / "b", stop_after=1)
    (partial,) = (tmp_path / "b").glob("*.partial.pt")
    damage(partial)
    with pytest.warns(RuntimeWarning, match="corrupt"):
        resumed = _weights(train_baseline(toy_bundle, MODEL, CFG, tmp_path / "b"))
    assert _same(whole, resumed)
    assert not list((tmp_path / "b").glob("*.partial.pt"))


# ----------------------------------------------------------------------------- non-finite training
def _nan_at(epoch: int, batch: int):
    """CE loss, except NaN at (epoch, batch), 1-based (counting calls: 8 batches per epoch here)."""
    calls = []

    def loss(model, x, y, cfg):
        calls.append(1)
        out = T.LOSSES["ce"](model, x, y, cfg)
        return out * float("nan") if len(calls) == (epoch - 1) * 8 + batch else out
    return loss


def test_nan_loss_stops_naming_stage_epoch_and_batch_and_caches_nothing(toy_bundle, tmp_path):
    model = T.build_model(MODEL, 1, 4)
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=32)  # 256 images: 8 batches per epoch
    with pytest.raises(NonFiniteLoss, match=r"mystage: .*NaN or inf at epoch 2/3, batch 3/8") as err:
        run_stage("mystage", "k", model, toy_bundle.train, _nan_at(2, 3), cfg, tmp_path)
    assert (err.value.stage, err.value.epoch, err.value.batch) == ("mystage", 2, 3)
    assert list(tmp_path.iterdir()) == []  # no final checkpoint, and epoch 1's partial is gone


def test_nan_training_image_outside_a_bundle_stops_at_its_batch(toy_bundle):
    x, y = toy_bundle.train.tensors[0].clone(), toy_bundle.train.tensors[1]
    x[100, 0, 3, 3] = float("nan")
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=32)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed * 1000))
    batch = int((order == 100).nonzero()) // 32 + 1  # where the shuffle puts image 100
    with pytest.raises(NonFiniteLoss, match=rf"epoch 1/1, batch {batch}/8"):
        T.fit(T.build_model(MODEL, 1, 4), TensorDataset(x, y), T.LOSSES["ce"], cfg, desc="baseline")


def test_finite_loss_with_non_finite_final_weights_is_not_cached(toy_bundle, tmp_path):
    def loss(model, x, y, cfg):  # finite value (the sqrt term is 0), NaN gradient: weights go NaN
        p = model.head.fc.weight
        return T.LOSSES["ce"](model, x, y, cfg) + (p - p.detach()).abs().sqrt().sum()

    data = TensorDataset(*(t[:32] for t in toy_bundle.train.tensors))
    with pytest.raises(NonFiniteLoss, match=r"s: the weights are NaN or inf after epoch 1/1"):
        run_stage("s", "k", T.build_model(MODEL, 1, 4), data, loss, TrainConfig(epochs=1, batch_size=32), tmp_path)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- keys
def test_one_cache_version_and_the_key_recipe_is_unchanged():
    import llcpkg.compress as C

    assert not hasattr(C, "CACHE_VERSION") and T.CACHE_VERSION is cache.CACHE_VERSION == 1
    assert T.stage_key is cache.stage_key
    blob = json.dumps({"cache_version": 1, "n": 3, "stage": "x"}, sort_keys=True)
    assert cache.stage_key(stage="x", n=3) == hashlib.sha1(blob.encode()).hexdigest()[:16]


def test_numpy_scalars_give_the_same_key_as_python_numbers():
    a = TrainConfig(epochs=np.int64(2), lr=np.float32(0.5), batch_size=np.int32(8))
    b = TrainConfig(epochs=2, lr=0.5, batch_size=8)
    assert cache.stage_key(train=a) == cache.stage_key(train=b)


def _image_folder(root, n=3, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def test_image_folder_fingerprint_follows_content_and_size(tmp_path):
    from PIL import Image

    root = _image_folder(tmp_path / "one")
    base = load_image_folder(root, size=8)
    fp = fingerprint(base.train)
    assert fingerprint(load_image_folder(_image_folder(tmp_path / "copy"), size=8).train) == fp  # content, not path
    assert fingerprint(load_image_folder(root, size=16).train) != fp  # another size
    img = root / "train" / "a" / "0.png"
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(img)  # same file count, other pixels
    assert fingerprint(load_image_folder(root, size=8).train) != fp


def test_image_folder_fingerprint_follows_the_transform(tmp_path):
    from torchvision import transforms as Tv

    data = load_image_folder(_image_folder(tmp_path), size=8)
    fp = fingerprint(data.train)
    data.train.transform = Tv.Compose([Tv.Resize(8), Tv.CenterCrop(8), Tv.ToTensor()])  # e.g. augmentation off
    assert fingerprint(data.train) != fp


def test_large_folders_hash_a_sample_plus_every_size_and_mtime(tmp_path, monkeypatch):
    import os

    import llcpkg.data as D

    monkeypatch.setattr(D, "FULL_HASH_BYTES", 0)  # every folder counts as large
    monkeypatch.setattr(D, "SAMPLED_FILES", 2)
    root = _image_folder(tmp_path)
    fp = fingerprint(load_image_folder(root, size=8).train)
    img = root / "train" / "a" / "1.png"  # not among the 2 sampled files (first and last)
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fingerprint(load_image_folder(root, size=8).train) != fp


def test_array_backed_sets_hash_their_data_and_transform():
    class ArraySet(torch.utils.data.Dataset):  # the CIFAR layout: data (N, H, W, C) uint8, targets
        def __init__(self, data, transform="t1"):
            self.data, self.targets, self.transform = data, [0, 1, 0, 1], transform

        def __len__(self):
            return len(self.data)

    data = np.zeros((4, 2, 2, 3), np.uint8)
    fp = fingerprint(ArraySet(data))
    changed = data.copy()
    changed[2, 1, 1, 0] = 7
    assert fingerprint(ArraySet(changed)) != fp
    assert fingerprint(ArraySet(data, "t2")) != fp
    assert fingerprint(ArraySet(data.copy())) == fp
