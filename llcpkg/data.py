"""Data sets as (train, test) pairs with class names and, where known, a class hierarchy.

Small sets (Fashion-MNIST, the Omniglot subset) are held in memory as float tensors
(N, C, H, W), normalised; CIFAR and ImageFolder (ImageNet-style) go through torchvision
for users who have them. Nothing is downloaded unless ``download=True`` (or
``$LLC_DOWNLOAD=1``), which ``make reproduce`` sets on a machine with internet.

Roots, first found wins: the ``root`` argument, the environment variable
(``LLC_FMNIST_ROOT``, ``LLC_OMNIGLOT_ROOT``, ``LLC_CIFAR_ROOT``, ``LLC_IMAGEFOLDER_ROOT``),
then the standard place (``/usr/share/datasets/fashion-mnist`` from the Debian package
``dataset-fashion-mnist``; ``~/.cache/llcpkg/<set>`` for downloads).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

__all__ = ["DataBundle", "load_dataset", "DATASETS", "FASHION_MNIST_GROUPS", "subset", "split_classes", "take",
           "fingerprint", "toy_bundle"]

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_CACHE = Path(os.environ.get("LLC_DATA_CACHE", Path.home() / ".cache" / "llcpkg"))

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# The natural grouping given in ../shared/data/README.md (no hierarchy ships with the set):
# tops = T-shirt, pullover, coat, shirt; footwear = sandal, sneaker, ankle boot;
# trouser, dress and bag each stand alone.
FASHION_MNIST_GROUPS = {"tops": [0, 2, 4, 6], "footwear": [5, 7, 9],
                        "trouser": [1], "dress": [3], "bag": [8]}

OMNIGLOT_ARCHIVES = {  # sha256 from ../shared/data/README.md (Brenden Lake's repository, commit 057f034)
    "images_background_small1.zip": "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "images_background_small2.zip": "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
}
OMNIGLOT_URL = "https://github.com/brendenlake/omniglot/raw/057f034/python/{name}"


@dataclass
class DataBundle:
    """A data set's train and test splits plus what is known about its classes.

    ``train``/``test`` yield ``(x, y)`` with x a float tensor (C, H, W) and y an int in
    [0, num_classes). ``groups`` maps a superclass name to its class indices (None when no
    hierarchy is known).
    """

    name: str
    train: Dataset
    test: Dataset
    class_names: list[str]
    groups: dict[str, list[int]] | None
    image_shape: tuple[int, int, int]  # (C, H, W)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_to_group(self) -> np.ndarray | None:
        """Array (L,) giving each class's group index (groups in ``self.groups`` order), or None."""
        if self.groups is None:
            return None
        out = np.full(self.num_classes, -1, dtype=np.int64)
        for g, members in enumerate(self.groups.values()):
            out[members] = g
        return out


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def _first_existing(candidates: list[Path | str | None], must_contain: list[str]) -> Path | None:
    for c in candidates:
        if c and all((Path(c) / f).exists() for f in must_contain):
            return Path(c)
    return None


# ----------------------------------------------------------------------------- Fashion-MNIST
_FMNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_FMNIST_MEAN, _FMNIST_STD = 0.2860, 0.3530


def _read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, ndim = int.from_bytes(raw[:4], "big"), raw[3]
    if magic >> 8 != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: {data.size} bytes for shape {dims}")
    return data.reshape(dims)


def _fmnist_root(root: str | Path | None, download: bool) -> Path:
    need = [*_FMNIST_FILES["train"], *_FMNIST_FILES["test"]]
    tv_raw = DOWNLOAD_CACHE / "FashionMNIST" / "raw"
    found = _first_existing([root, os.environ.get("LLC_FMNIST_ROOT"), DEBIAN_FMNIST, tv_raw], need)
    if found:
        return found
    if download:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(DOWNLOAD_CACHE), train=train, download=True)
        return tv_raw
    raise FileNotFoundError(
        "Fashion-MNIST not found. Install it with `apt-get update && apt-get install -y "
        "dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist), or put "
        f"{', '.join(need)} in a folder and set LLC_FMNIST_ROOT to it, or pass download=True "
        "(or set LLC_DOWNLOAD=1) to fetch it through torchvision."
    )


def _to_tensor_dataset(images: np.ndarray, labels: np.ndarray, mean: float, std: float) -> TensorDataset:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return TensorDataset((x - mean) / std, torch.from_numpy(labels.astype(np.int64)))


def load_fashion_mnist(root: str | Path | None = None, download: bool = False) -> DataBundle:
    """Fashion-MNIST: 60k train + 10k test, 28×28 grey, 10 classes; groups from FASHION_MNIST_GROUPS."""
    base = _fmnist_root(root, download)
    splits = {}
    for split, (img_f, lab_f) in _FMNIST_FILES.items():
        images, labels = _read_idx(base / img_f), _read_idx(base / lab_f)
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"corrupt Fashion-MNIST files in {base}: images {images.shape}, labels {labels.shape}")
        splits[split] = _to_tensor_dataset(images, labels, _FMNIST_MEAN, _FMNIST_STD)
    return DataBundle("fashion_mnist", splits["train"], splits["test"], list(FASHION_MNIST_CLASSES),
                      {k: list(v) for k, v in FASHION_MNIST_GROUPS.items()}, (1, 28, 28))


# ----------------------------------------------------------------------------- Omniglot subset
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_omniglot(dest: Path) -> Path:
    """Download the two reduced background archives into ``dest``, checking each sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, digest in OMNIGLOT_ARCHIVES.items():
        target = dest / name
        if target.exists() and _sha256(target) == digest:
            continue
        tmp = target.with_suffix(".part")
        urllib.request.urlretrieve(OMNIGLOT_URL.format(name=name), tmp)
        if _sha256(tmp) != digest:
            tmp.unlink()
            raise ValueError(f"downloaded {name} does not match its sha256 {digest}")
        os.replace(tmp, target)
    return dest


def _omniglot_root(root: str | Path | None, download: bool) -> Path:
    need = list(OMNIGLOT_ARCHIVES)
    found = _first_existing([root, os.environ.get("LLC_OMNIGLOT_ROOT"), DOWNLOAD_CACHE / "omniglot"], need)
    if found:
        return found
    if download:
        return fetch_omniglot(DOWNLOAD_CACHE / "omniglot")
    raise FileNotFoundError(
        f"Omniglot archives {need} not found. Point LLC_OMNIGLOT_ROOT (or the root argument) at the "
        "folder holding them (in this project: ../shared/data/omniglot), or pass download=True "
        "(or set LLC_DOWNLOAD=1) to fetch them from the public Omniglot repository."
    )


@lru_cache(maxsize=4)
def _read_omniglot(root: Path, size: int, check: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Decode both archives once: images (N, size, size) uint8 (ink = 255), class ids, drawers, class names."""
    from PIL import Image

    records: dict[tuple[str, str, int], bytes] = {}
    for name, digest in OMNIGLOT_ARCHIVES.items():
        if check and _sha256(root / name) != digest:
            raise ValueError(f"{root / name} is corrupt (sha256 differs from {digest}); fetch it again")
        with zipfile.ZipFile(root / name) as zf:
            for info in zf.infolist():
                parts = info.filename.split("/")
                if len(parts) != 4 or not parts[3].endswith(".png"):
                    continue
                _, alphabet, character, fname = parts
                drawer = int(fname[:-4].split("_")[1])
                records.setdefault((alphabet, character, drawer), zf.read(info))  # dedupe overlap
    class_names = sorted({f"{a}/{c}" for a, c, _ in records})
    index = {n: i for i, n in enumerate(class_names)}
    keys = sorted(records)
    images = np.empty((len(keys), size, size), dtype=np.uint8)
    for i, key in enumerate(keys):
        img = Image.open(io.BytesIO(records[key])).convert("L").resize((size, size), Image.BOX)
        images[i] = 255 - np.asarray(img)  # ink bright on dark, like MNIST
    labels = np.array([index[f"{a}/{c}"] for a, c, _ in keys], dtype=np.int64)
    drawers = np.array([d for _, _, d in keys], dtype=np.int64)
    return images, labels, drawers, class_names


def load_omniglot(root: str | Path | None = None, download: bool = False, size: int = 28,
                  test_drawers: tuple[int, ...] = (16, 17, 18, 19, 20), check: bool = True) -> DataBundle:
    """The Omniglot subset: 242 characters of 8 alphabets, 20 drawers each, resized to ``size``².

    Split by drawer (default: drawers 1–15 train, 16–20 test), so every class is in both
    splits. Classes are ``"Alphabet/characterNN"`` sorted; ``groups`` maps alphabet → classes.
    """
    base = _omniglot_root(root, download)
    images, labels, drawers, names = _read_omniglot(base, size, check)
    is_test = np.isin(drawers, test_drawers)
    mean, std = images.mean() / 255.0, images.std() / 255.0
    train = _to_tensor_dataset(images[~is_test], labels[~is_test], mean, std)
    test = _to_tensor_dataset(images[is_test], labels[is_test], mean, std)
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n.split("/")[0], []).append(i)
    return DataBundle("omniglot", train, test, names, groups, (1, size, size))


# ----------------------------------------------------------------------------- torchvision sets
def _image_transforms(train: bool, size: int, mean, std, augment: bool = True):
    """ImageNet's: training RandomResizedCrop(size) + flip, evaluation Resize(1.14·size) +
    CenterCrop(size). ``augment=False``: Resize(size) + CenterCrop(size) for both splits (small
    images, e.g. digits, keep all their content)."""
    from torchvision import transforms as T

    if not augment:
        aug = [T.Resize(size), T.CenterCrop(size)]
    else:
        aug = [T.RandomResizedCrop(size), T.RandomHorizontalFlip()] if train else [T.Resize(int(size * 1.14)), T.CenterCrop(size)]
    return T.Compose([*aug, T.ToTensor(), T.Normalize(mean, std)])


def _mark_augment(name: str, augment: bool, *splits: Dataset) -> str:
    """Record the setting on each split (``split.augment``, for fingerprints) and in the set's
    name, so that cache keys tell the two apart (unchanged name when augmenting, the default)."""
    for ds in splits:
        ds.augment = augment
    return name if augment else f"{name}-noaug"


def load_cifar(name: str = "cifar10", root: str | Path | None = None, download: bool = False,
               augment: bool = True) -> DataBundle:
    """CIFAR-10 or CIFAR-100 through torchvision (32×32 RGB; training RandomCrop(32, pad 4) +
    flips when ``augment``)."""
    from torchvision import datasets, transforms as T

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    base = Path(root or os.environ.get("LLC_CIFAR_ROOT") or DOWNLOAD_CACHE / name)
    norm = T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
    try:
        train = cls(str(base), train=True, download=download, transform=T.Compose([*aug, T.ToTensor(), norm]))
        test = cls(str(base), train=False, download=download, transform=T.Compose([T.ToTensor(), norm]))
    except RuntimeError as e:
        raise FileNotFoundError(f"{name} not found under {base}: set LLC_CIFAR_ROOT to the folder torchvision "
                                f"downloaded it into, or pass download=True ({e})") from e
    return DataBundle(_mark_augment(name, augment, train, test), train, test, list(train.classes), None, (3, 32, 32))


def load_image_folder(root: str | Path | None = None, size: int = 224, download: bool = False,
                      augment: bool = True) -> DataBundle:
    """An ImageNet-style folder: ``root/train/<class>/*`` and ``root/val/<class>/*``, resized to
    ``size``² with ImageNet augmentation for training (``augment=False``: none, see
    ``_image_transforms``)."""
    from torchvision import datasets

    base = Path(root or os.environ.get("LLC_IMAGEFOLDER_ROOT") or "")
    if not (base / "train").is_dir() or not (base / "val").is_dir():
        raise FileNotFoundError(f"ImageFolder root {str(base)!r} must hold train/<class>/ and val/<class>/ "
                                "folders; set LLC_IMAGEFOLDER_ROOT or pass root=")
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    train = datasets.ImageFolder(str(base / "train"), _image_transforms(True, size, mean, std, augment))
    test = datasets.ImageFolder(str(base / "val"), _image_transforms(False, size, mean, std, augment))
    if train.classes != test.classes:
        raise ValueError("train/ and val/ hold different class folders")
    name = _mark_augment(base.name or "imagefolder", augment, train, test)
    return DataBundle(name, train, test, list(train.classes), None, (3, size, size))


DATASETS = {
    "fashion_mnist": load_fashion_mnist,
    "omniglot": load_omniglot,
    "cifar10": lambda **kw: load_cifar("cifar10", **kw),
    "cifar100": lambda **kw: load_cifar("cifar100", **kw),
    "imagefolder": load_image_folder,
}


def load_dataset(name: str, root: str | Path | None = None, download: bool | None = None, **kw) -> DataBundle:
    """Load a data set by name (see ``DATASETS``); ``download`` defaults to ``$LLC_DOWNLOAD``."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    download = _env_flag("LLC_DOWNLOAD") if download is None else download
    return DATASETS[name](root=root, download=download, **kw)


# ----------------------------------------------------------------------------- subsets
def _labels_of(ds: Dataset) -> np.ndarray:
    if isinstance(ds, TensorDataset):
        return ds.tensors[1].numpy()
    if isinstance(ds, Subset):
        return _labels_of(ds.dataset)[np.asarray(ds.indices)]
    if hasattr(ds, "targets"):
        return np.asarray(ds.targets)
    return np.array([int(ds[i][1]) for i in range(len(ds))])


def fingerprint(ds: Dataset) -> str:
    """A short hash of a split's content (labels and a strided sample of the images for
    in-memory sets; the base set's fingerprint and the indices for a Subset; the size and
    root otherwise), so that cache keys tell apart two subsets of the same size."""
    h = hashlib.sha1()
    if isinstance(ds, TensorDataset):
        x, y = ds.tensors[0], ds.tensors[1]
        h.update(y.numpy().tobytes())
        h.update(np.ascontiguousarray(x[:: max(1, len(x) // 64)].numpy()).tobytes())
    elif isinstance(ds, Subset):
        h.update(fingerprint(ds.dataset).encode())
        h.update(np.asarray(ds.indices, dtype=np.int64).tobytes())
    else:
        h.update(f"{type(ds).__name__}:{len(ds)}:{getattr(ds, 'root', '')}".encode())
    return h.hexdigest()[:16]


def take(ds: Dataset, idx: np.ndarray) -> Dataset:
    """The examples ``idx`` of ``ds`` (sliced tensors for in-memory sets, else a Subset)."""
    if isinstance(ds, TensorDataset):
        return TensorDataset(*(t[torch.from_numpy(idx)] for t in ds.tensors))
    return Subset(ds, idx.tolist())


def subset(bundle: DataBundle, train: int | None, test: int | None, seed: int = 0) -> DataBundle:
    """A bundle with at most ``train``/``test`` examples, drawn at random (fixed ``seed``)."""
    rng = np.random.default_rng(seed)

    def cut(ds: Dataset, n: int | None) -> Dataset:
        if n is None or n >= len(ds):
            return ds
        return take(ds, np.sort(rng.permutation(len(ds))[:n]))

    return DataBundle(bundle.name, cut(bundle.train, train), cut(bundle.test, test), bundle.class_names,
                      bundle.groups, bundle.image_shape)


def split_classes(bundle: DataBundle, held_out: list[int]) -> tuple[DataBundle, Dataset]:
    """Hold classes out (e.g. as out-of-distribution): returns the in-distribution bundle with
    labels re-indexed to [0, L - len(held_out)) and the held-out classes' test images."""
    held = sorted(set(held_out))
    if any(c < 0 or c >= bundle.num_classes for c in held):
        raise ValueError(f"held-out classes must lie in [0, {bundle.num_classes})")
    keep = [c for c in range(bundle.num_classes) if c not in held]
    remap = np.full(bundle.num_classes, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))

    def restrict(ds: Dataset, classes: list[int], relabel: bool) -> Dataset:
        labels = _labels_of(ds)
        idx = np.flatnonzero(np.isin(labels, classes))
        sub = take(ds, idx)
        if relabel and isinstance(sub, TensorDataset):
            x, y = sub.tensors
            return TensorDataset(x, torch.from_numpy(remap[y.numpy()]))
        if relabel:
            raise NotImplementedError("relabelling is implemented for in-memory data sets only")
        return sub

    groups = None
    if bundle.groups:
        groups = {g: [int(remap[c]) for c in m if remap[c] >= 0] for g, m in bundle.groups.items()}
        groups = {g: m for g, m in groups.items() if m}
    ind = DataBundle(f"{bundle.name}-in", restrict(bundle.train, keep, True), restrict(bundle.test, keep, True),
                     [bundle.class_names[c] for c in keep], groups, bundle.image_shape)
    return ind, restrict(bundle.test, held, False)


# ----------------------------------------------------------------------------- synthetic
def toy_bundle(n_train: int = 256, n_test: int = 128, num_classes: int = 4, size: int = 8, seed: int = 0,
               noise: float = 0.3) -> DataBundle:
    """A small separable image problem with a known answer: class c is a bright 2×2 patch at
    position c of a grid over a (1, size, size) image, plus Gaussian noise."""
    if num_classes > (size // 2) ** 2:
        raise ValueError(f"at most {(size // 2) ** 2} classes fit an image of side {size}")
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> TensorDataset:
        y = torch.randint(0, num_classes, (n,), generator=g)
        x = noise * torch.randn(n, 1, size, size, generator=g)
        for c in range(num_classes):
            r, col = divmod(c, size // 2)
            x[y == c, 0, 2 * r:2 * r + 2, 2 * col:2 * col + 2] += 2.0
        return TensorDataset(x, y)

    return DataBundle("toy", make(n_train), make(n_test), [f"c{i}" for i in range(num_classes)], None, (1, size, size))


