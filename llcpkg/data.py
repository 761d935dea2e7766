"""Data sets as (train, test) pairs with class names and, where known, a class hierarchy.

Small sets (Fashion-MNIST, the Omniglot subset) are held in memory as float tensors
(N, C, H, W), normalised; CIFAR and ImageFolder (ImageNet-style) go through torchvision
for users who have them. Nothing is downloaded unless ``download=True`` (or
``$LLC_DOWNLOAD=1``), which ``make reproduce`` sets on a machine with internet.

Roots, first found wins: the ``root`` argument, the environment variable
(``LLC_FMNIST_ROOT``, ``LLC_OMNIGLOT_ROOT``, ``LLC_CIFAR_ROOT``, ``LLC_IMAGEFOLDER_ROOT``),
then the standard place (``/usr/share/datasets/fashion-mnist`` from the Debian package
``dataset-fashion-mnist``; ``~/.cache/llcpkg/<set>`` for downloads). A root named
explicitly (the argument, or a non-empty environment variable) must hold the files: it is
an error, never a fall-back to the standard place.

Every ``DataBundle`` is checked when it is made (:func:`validate_bundle`): non-empty
splits, float image tensors of ``image_shape`` with finite values (every value of an
in-memory set; a sample of items otherwise), integer labels in [0, L).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from .cache import file_sha256

__all__ = ["DataBundle", "load_dataset", "DATASETS", "FASHION_MNIST_GROUPS", "NORMALISATION", "subset", "split_classes",
           "take", "fingerprint", "toy_bundle", "validate_bundle", "check_labels", "shift_batch", "ShiftedTensorDataset",
           "with_shifts", "class_holdout", "balanced_batch_shape", "class_balanced_batches", "labels_of"]

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

    def __post_init__(self):
        self.image_shape = tuple(self.image_shape)
        validate_bundle(self)

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


def _named_root(root: str | Path | None, env: str, must_contain: list[str], hint: str) -> Path | None:
    """The folder the user named (``root``, else ``$env`` when set and non-empty), checked to
    hold ``must_contain``; None if none was named. A named folder that lacks the files is an
    error (FileNotFoundError with ``hint``), not a reason to look elsewhere."""
    if root is not None and str(root) == "":
        raise ValueError(f"root is an empty string; pass the data folder or None. {hint}")
    source, base = ("root=", root) if root is not None else (f"${env}", os.environ.get(env) or None)
    if base is None:
        return None
    base = Path(base)
    missing = [f for f in must_contain if not (base / f).exists()]
    if missing:
        what = "does not exist" if not base.is_dir() else f"lacks {', '.join(missing)}"
        raise FileNotFoundError(f"{source} {base} {what}. {hint}")
    return base


def _download_failed(what: str, err: Exception, hint: str) -> FileNotFoundError:
    """The error for a failed download (offline, proxy, ...): the cause plus the offline fixes."""
    return FileNotFoundError(f"{what} is not on this machine and downloading it failed "
                             f"({type(err).__name__}: {err}). {hint}")


# ----------------------------------------------------------------------------- Fashion-MNIST
_FMNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
_FMNIST_MEAN, _FMNIST_STD = 0.2860, 0.3530
NORMALISATION = {"fashion_mnist": (_FMNIST_MEAN, _FMNIST_STD)}  # (mean, std) of [0, 1] pixels a set is standardised with


_FMNIST_FIX = ("reinstall it (`apt-get install --reinstall dataset-fashion-mnist`) or set LLC_FMNIST_ROOT to a "
               "folder holding intact copies of the four .gz files")


def _read_idx(path: Path, fix: str = "fetch the file again") -> np.ndarray:
    """Read a (gzipped) IDX file into a uint8 array; a damaged file -> ValueError naming it and ``fix``."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # truncated or not gzip at all
        raise ValueError(f"{path} is damaged ({type(e).__name__}: {e}); {fix}") from e
    if len(raw) < 4 or len(raw) < 4 + 4 * raw[3]:
        raise ValueError(f"{path} is empty or truncated ({len(raw)} bytes after decompression); {fix}")
    magic, ndim = int.from_bytes(raw[:4], "big"), raw[3]
    if magic >> 8 != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {magic:#x}); {fix}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: {data.size} bytes for shape {dims}; {fix}")
    return data.reshape(dims)


def _fmnist_root(root: str | Path | None, download: bool) -> Path:
    need = [*_FMNIST_FILES["train"], *_FMNIST_FILES["test"]]
    tv_raw = DOWNLOAD_CACHE / "FashionMNIST" / "raw"
    hint = ("Install Fashion-MNIST with `apt-get update && apt-get install -y dataset-fashion-mnist` (files under "
            f"{DEBIAN_FMNIST}), or put {', '.join(need)} in a folder and set LLC_FMNIST_ROOT to it (or pass root=), "
            f"or put them in {tv_raw}.")
    found = _named_root(root, "LLC_FMNIST_ROOT", need, hint) or _first_existing([DEBIAN_FMNIST, tv_raw], need)
    if found:
        return found
    if download:
        from torchvision.datasets import FashionMNIST

        try:
            for train in (True, False):
                FashionMNIST(str(DOWNLOAD_CACHE), train=train, download=True)
        except (OSError, RuntimeError) as e:  # URLError is an OSError; torchvision wraps it in RuntimeError
            raise _download_failed("Fashion-MNIST", e, hint) from e
        return tv_raw
    raise FileNotFoundError(f"Fashion-MNIST not found. {hint} Or pass download=True (or set LLC_DOWNLOAD=1) to "
                            "fetch it through torchvision.")


def _to_tensor_dataset(images: np.ndarray, labels: np.ndarray, mean: float, std: float) -> TensorDataset:
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return TensorDataset((x - mean) / std, torch.from_numpy(labels.astype(np.int64)))


def load_fashion_mnist(root: str | Path | None = None, download: bool = False) -> DataBundle:
    """Fashion-MNIST: 60k train + 10k test, 28×28 grey, 10 classes; groups from FASHION_MNIST_GROUPS."""
    base = _fmnist_root(root, download)
    splits = {}
    for split, (img_f, lab_f) in _FMNIST_FILES.items():
        images, labels = _read_idx(base / img_f, _FMNIST_FIX), _read_idx(base / lab_f, _FMNIST_FIX)
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"corrupt Fashion-MNIST files in {base}: images {images.shape}, labels {labels.shape}")
        splits[split] = _to_tensor_dataset(images, labels, _FMNIST_MEAN, _FMNIST_STD)
    return DataBundle("fashion_mnist", splits["train"], splits["test"], list(FASHION_MNIST_CLASSES),
                      {k: list(v) for k, v in FASHION_MNIST_GROUPS.items()}, (1, 28, 28))


# ----------------------------------------------------------------------------- Omniglot subset
def fetch_omniglot(dest: Path) -> Path:
    """Download the two reduced background archives into ``dest``, checking each sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, digest in OMNIGLOT_ARCHIVES.items():
        target = dest / name
        if target.exists() and file_sha256(target) == digest:
            continue
        tmp = target.with_suffix(".part")
        urllib.request.urlretrieve(OMNIGLOT_URL.format(name=name), tmp)
        if file_sha256(tmp) != digest:
            tmp.unlink()
            raise ValueError(f"downloaded {name} does not match its sha256 {digest}")
        os.replace(tmp, target)
    return dest


def _omniglot_root(root: str | Path | None, download: bool) -> Path:
    need = list(OMNIGLOT_ARCHIVES)
    cache = DOWNLOAD_CACHE / "omniglot"
    hint = (f"Point LLC_OMNIGLOT_ROOT (or the root argument) at the folder holding {need} (in this project: "
            f"../shared/data/omniglot), or put them in {cache}.")
    found = _named_root(root, "LLC_OMNIGLOT_ROOT", need, hint) or _first_existing([cache], need)
    if found:
        return found
    if download:
        try:
            return fetch_omniglot(cache)
        except OSError as e:  # URLError (offline) is an OSError
            raise _download_failed("The Omniglot subset", e, hint) from e
    raise FileNotFoundError(f"Omniglot archives {need} not found. {hint} Or pass download=True (or set "
                            "LLC_DOWNLOAD=1) to fetch them from the public Omniglot repository.")


@lru_cache(maxsize=4)
def _read_omniglot(root: Path, size: int, check: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Decode both archives once: images (N, size, size) uint8 (ink = 255), class ids, drawers, class names."""
    from PIL import Image

    records: dict[tuple[str, str, int], bytes] = {}
    for name, digest in OMNIGLOT_ARCHIVES.items():
        if check and file_sha256(root / name) != digest:
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
                  test_drawers: tuple[int, ...] = (16, 17, 18, 19, 20), check: bool = True,
                  normalise: tuple[float, float] | None = None) -> DataBundle:
    """The Omniglot subset: 242 characters of 8 alphabets, 20 drawers each, resized to ``size``².

    Split by drawer (default: drawers 1–15 train, 16–20 test), so every class is in both
    splits. Classes are ``"Alphabet/characterNN"`` sorted; ``groups`` maps alphabet → classes.
    ``normalise``: the (mean, std) of [0, 1] pixels to standardise with (e.g.
    ``NORMALISATION["fashion_mnist"]``, to feed Omniglot to a Fashion-MNIST model as far OOD);
    None: Omniglot's own.
    """
    base = _omniglot_root(root, download)
    images, labels, drawers, names = _read_omniglot(base, size, check)
    is_test = np.isin(drawers, test_drawers)
    mean, std = normalise or (images.mean() / 255.0, images.std() / 255.0)
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
    except (RuntimeError, OSError) as e:  # not there, or (download=True) offline: URLError is an OSError
        raise FileNotFoundError(f"{name} not found under {base}: set LLC_CIFAR_ROOT to the folder torchvision "
                                f"downloaded it into, or pass download=True on a machine with internet "
                                f"({type(e).__name__}: {e})") from e
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
    "toy": lambda **kw: load_toy(**kw),  # synthetic, for end-to-end tests of the experiments (no files)
}


def load_dataset(name: str, root: str | Path | None = None, download: bool | None = None, **kw) -> DataBundle:
    """Load a data set by name (see ``DATASETS``); ``download`` defaults to ``$LLC_DOWNLOAD``."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    download = _env_flag("LLC_DOWNLOAD") if download is None else download
    return DATASETS[name](root=root, download=download, **kw)


# ----------------------------------------------------------------------------- validation
VALIDATION_ITEMS = 16  # items read per split to check a lazily loaded data set


def check_labels(y, num_classes: int, where: str = "labels") -> None:
    """Labels (N,) (numpy or torch) must be integer class indices in [0, num_classes).

    Raises TypeError for a non-integer dtype (e.g. float labels) and ValueError for labels
    out of range; ``where`` names them in the message (e.g. "toy test split labels").
    """
    if isinstance(y, torch.Tensor):
        integer = not (y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool)
    else:
        y = np.asarray(y)
        integer = np.issubdtype(y.dtype, np.integer)
    if not integer:
        raise TypeError(f"{where} must be integer class indices; got dtype {y.dtype} "
                        "(convert with .long() or .astype(np.int64))")
    if y.numel() if isinstance(y, torch.Tensor) else y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{where} must lie in [0, {num_classes}); got range [{lo}, {hi}]")


def _cheap_labels(ds: Dataset) -> np.ndarray | torch.Tensor | None:
    """Every label of ``ds`` when known without reading images (tensors, ``targets``), else None."""
    if isinstance(ds, TensorDataset):
        return ds.tensors[1]
    if isinstance(ds, Subset):
        base = _cheap_labels(ds.dataset)
        return None if base is None else base[np.asarray(ds.indices, dtype=np.int64)]
    targets = getattr(ds, "targets", None)
    return None if targets is None else np.asarray(targets)


def _require_tensor(x, where: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where} yields images of type {type(x).__name__}; the models take float torch tensors "
                        "(C, H, W): convert with torch.from_numpy(...).float() or a ToTensor transform")


def _check_images(x, shape: tuple[int, ...], where: str) -> None:
    """x (N, *shape): a float tensor with finite values."""
    _require_tensor(x, where)
    if not x.is_floating_point():
        raise TypeError(f"{where} holds {x.dtype} images; the models take float images: convert them "
                        "(e.g. x.float() / 255, then normalise)")
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"{where} holds images of shape {tuple(x.shape[1:])}, but the bundle's image_shape is "
                         f"{shape}")
    bad = ~torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
    if bad.any():
        raise ValueError(f"{where} holds {int(bad.sum())} image(s) with NaN or inf values (first at position "
                         f"{int(bad.nonzero()[0])}): clean or drop them before training")


def _sampled_items(ds: Dataset, where: str) -> tuple[torch.Tensor, list]:
    """Up to VALIDATION_ITEMS evenly spaced items of a lazy data set: (images stacked, labels)."""
    idx = np.unique(np.linspace(0, len(ds) - 1, min(len(ds), VALIDATION_ITEMS)).astype(int))
    with torch.random.fork_rng(devices=[]):  # random augmentation must not move the caller's stream
        items = [ds[int(i)] for i in idx]
    xs = [x for x, _ in items]
    for x in xs:
        _require_tensor(x, where)
    if len({tuple(x.shape) for x in xs}) > 1:
        raise ValueError(f"{where} yields images of different shapes {sorted({tuple(x.shape) for x in xs})}")
    return torch.stack(xs), [y for _, y in items]


def validate_bundle(bundle: DataBundle) -> None:
    """Check a bundle where it is made (``DataBundle.__post_init__``), once.

    Per split: at least one example; images float tensors of shape ``image_shape`` with
    finite values; labels integer class indices in [0, num_classes). In-memory splits
    (TensorDataset and subsets of it) are checked in full; lazily loaded ones (ImageFolder,
    CIFAR) on ``VALIDATION_ITEMS`` evenly spaced items, plus all their ``targets``.
    Raises TypeError / ValueError naming the bundle, the split and the fix.
    """
    if bundle.num_classes < 1:
        raise ValueError(f"{bundle.name}: the bundle has no classes (class_names is empty)")
    shape = bundle.image_shape
    if not shape or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in shape):
        raise ValueError(f"{bundle.name}: image_shape must be positive ints, e.g. (C, H, W); got {shape}")
    for split in ("train", "test"):
        ds, where = getattr(bundle, split), f"{bundle.name} {split} split"
        if len(ds) == 0:
            raise ValueError(f"the {where} is empty: check the data root and the subset sizes (both must be >= 1)")
        base = ds.dataset if isinstance(ds, Subset) else ds
        if isinstance(base, TensorDataset):
            x = base.tensors[0] if ds is base else base.tensors[0][np.asarray(ds.indices, dtype=np.int64)]
            labels, sampled = _cheap_labels(ds), None
        else:
            x, sampled = _sampled_items(ds, where)
            labels = _cheap_labels(ds)
        _check_images(x, shape, where)
        check_labels(labels if labels is not None else torch.as_tensor(sampled), bundle.num_classes,
                     f"{where} labels")


# ----------------------------------------------------------------------------- subsets
def _labels_of(ds: Dataset) -> np.ndarray:
    if isinstance(ds, TensorDataset):
        return ds.tensors[1].numpy()
    if isinstance(ds, Subset):
        return _labels_of(ds.dataset)[np.asarray(ds.indices)]
    if hasattr(ds, "targets"):
        return np.asarray(ds.targets)
    return np.array([int(ds[i][1]) for i in range(len(ds))])


def labels_of(ds: Dataset) -> np.ndarray:
    """The labels (N,) of a data set, read without decoding images where its type allows."""
    return _labels_of(ds)


FULL_HASH_BYTES = 1 << 30  # image folders up to this size have every file's bytes hashed
SAMPLED_FILES = 1024  # larger folders: the bytes of this many files, evenly spaced in sorted order
SAMPLED_ITEMS = 64  # other lazy data sets: this many items, read with a fixed seed


def fingerprint(ds: Dataset) -> str:
    """A short hash of a split's content and of every setting that shapes what it yields,
    so that a cache key changes when either does.

    - in-memory (TensorDataset): every label and a strided sample of about 64 images;
    - Subset: the base set's fingerprint and the indices;
    - folders (``samples``, e.g. ImageFolder): every file's relative path, class and size,
      plus every file's bytes (sha256) up to ``FULL_HASH_BYTES`` in all; beyond that, every
      file's modification time and the bytes of ``SAMPLED_FILES`` evenly spaced files;
    - sets held as an array (``data``, e.g. CIFAR): all of its bytes and the targets;
    - anything else: ``SAMPLED_ITEMS`` items read under a fixed seed.
    Folders, arrays and others also hash ``repr`` of ``transform`` and ``target_transform``
    (sizes, crops, augmentation; memory addresses removed), so another ``size`` or
    augmentation setting gives another key.
    """
    h = hashlib.sha1()
    if isinstance(ds, TensorDataset):
        x, y = ds.tensors[0], ds.tensors[1]
        h.update(y.numpy().tobytes())
        h.update(np.ascontiguousarray(x[:: max(1, len(x) // 64)].numpy()).tobytes())
    elif isinstance(ds, Subset):
        h.update(fingerprint(ds.dataset).encode())
        h.update(np.asarray(ds.indices, dtype=np.int64).tobytes())
    else:
        h.update(f"{type(ds).__name__}:{len(ds)}".encode())
        h.update(_content_digest(ds).encode())
        h.update(_transform_settings(ds).encode())
    return h.hexdigest()[:16]


def _transform_settings(ds: Dataset) -> str:
    """repr of the transforms a data set applies, without memory addresses (stable across runs)."""
    text = "|".join(repr(getattr(ds, a, None)) for a in ("transform", "target_transform"))
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _content_digest(ds: Dataset) -> str:
    """sha256 of a lazy data set's content (see :func:`fingerprint`), computed once per object."""
    memo = getattr(ds, "_llc_content_digest", None)
    if memo is not None and memo[0] == len(ds):
        return memo[1]
    if hasattr(ds, "samples"):
        digest = _files_digest([(Path(p), int(c)) for p, c in ds.samples], Path(getattr(ds, "root", "/")))
    elif isinstance(getattr(ds, "data", None), np.ndarray):
        h = hashlib.sha256(np.ascontiguousarray(ds.data).tobytes())
        h.update(np.asarray(getattr(ds, "targets", []), dtype=np.int64).tobytes())
        digest = h.hexdigest()
    else:
        digest = _items_digest(ds)
    try:
        ds._llc_content_digest = (len(ds), digest)
    except AttributeError:  # objects that refuse attributes are re-hashed next time
        pass
    return digest


def _files_digest(samples: list[tuple[Path, int]], root: Path) -> str:
    stats = [p.stat() for p, _ in samples]
    full = sum(st.st_size for st in stats) <= FULL_HASH_BYTES
    hashed = set(range(len(samples))) if full else set(np.linspace(0, len(samples) - 1, SAMPLED_FILES).astype(int))
    h = hashlib.sha256(b"full" if full else b"sampled")
    for i, ((path, cls), st) in enumerate(zip(samples, stats)):
        h.update(f"{os.path.relpath(path, root)}\0{cls}\0{st.st_size}\0".encode())
        if not full:
            h.update(str(st.st_mtime_ns).encode())
        if i in hashed:
            h.update(file_sha256(path).encode())
    return h.hexdigest()


def _items_digest(ds: Dataset) -> str:
    h = hashlib.sha256()
    with torch.random.fork_rng(devices=[]):  # random transforms must not move the caller's stream
        torch.manual_seed(0)
        for i in np.unique(np.linspace(0, len(ds) - 1, min(len(ds), SAMPLED_ITEMS)).astype(int)):
            x, y = ds[int(i)]
            h.update(np.ascontiguousarray(torch.as_tensor(x).numpy()).tobytes())
            h.update(str(int(y)).encode())
    return h.hexdigest()


def take(ds: Dataset, idx: np.ndarray) -> Dataset:
    """The examples ``idx`` of ``ds`` (sliced tensors for in-memory sets, else a Subset)."""
    if isinstance(ds, TensorDataset):
        return TensorDataset(*(t[torch.from_numpy(idx)] for t in ds.tensors))
    return Subset(ds, idx.tolist())


def balanced_batch_shape(num_classes: int, batch_size: int, per_class: int) -> tuple[int, int]:
    """(m classes, n images per class) of a class-balanced batch of at most ``batch_size``:
    m = min(L, batch_size // per_class) (at least 1), n = batch_size // m. Fashion-MNIST at
    batch 256 and ``per_class`` 8: 10 × 25; the Omniglot subset (242 classes): 32 × 8."""
    if per_class < 1 or batch_size < 1:
        raise ValueError(f"batch_size and per_class must be >= 1; got {batch_size}, {per_class}")
    m = max(1, min(num_classes, batch_size // per_class))
    return m, batch_size // m


def class_balanced_batches(labels: np.ndarray | torch.Tensor, batch_size: int, per_class: int, steps: int,
                           generator: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` index batches (m·n,) of m classes × n images each (:func:`balanced_batch_shape`),
    so that every batch holds positive pairs (pairwise losses such as HashNet's need them).

    ``labels`` (N,) ints. Classes are visited in shuffled rounds, m at a time (every class
    once per round); each class's images are drawn in shuffled rounds without replacement
    (a class with fewer than n images repeats within a batch). Deterministic given
    ``generator``. Batches are ordered class by class; the losses here do not depend on order.
    """
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    classes = torch.unique(y)
    members = [torch.nonzero(y == c).flatten() for c in classes]
    m, n = balanced_batch_shape(len(classes), batch_size, per_class)
    queues: list[list[int]] = [[] for _ in classes]
    order: list[int] = []

    def draw(c: int) -> list[int]:
        out = []
        while len(out) < n:
            if not queues[c]:
                queues[c] = members[c][torch.randperm(len(members[c]), generator=generator)].tolist()
            out.append(queues[c].pop())
        return out

    for _ in range(steps):
        if len(order) < m:  # next round: the remainder of this one first, then the new round's other classes
            fresh = torch.randperm(len(classes), generator=generator).tolist()
            order += [c for c in fresh if c not in order] + [c for c in fresh if c in order]
        picked, order = order[:m], order[m:]
        yield torch.tensor([i for c in picked for i in draw(c)], dtype=torch.long)


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


# ----------------------------------------------------------------------------- augmentation, validation
def shift_batch(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of ``x`` (B, C, H, W) moved by its own random (dy, dx), each uniform in
    [−max_shift, max_shift] and drawn from ``generator``; the pixels that enter are copies of the
    nearest edge pixel (replicate padding, so a blank background stays blank). Returns (B, C, H, W)."""
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0 or len(x) == 0:
        return x
    s = max_shift
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (s, s, s, s), mode="replicate")  # (B, C, H + 2s, W + 2s)
    offsets = torch.randint(0, 2 * s + 1, (len(x), 2), generator=generator)  # (B, 2): top-left corner of the crop
    rows = (offsets[:, :1] + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (offsets[:, 1:] + torch.arange(w))[:, None, :]  # (B, 1, W)
    crops = padded.permute(0, 2, 3, 1)[torch.arange(len(x))[:, None, None], rows, cols]  # (B, H, W, C)
    return crops.permute(0, 3, 1, 2).contiguous()


class ShiftedTensorDataset(TensorDataset):
    """An in-memory training split whose training batches are randomly shifted by up to
    ``max_shift`` pixels (:func:`shift_batch`). The examples themselves are unchanged: indexing
    and evaluation see the original images; :func:`llcpkg.train.fit` applies ``batch_augment``
    to every training batch with a generator seeded by (seed, epoch)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, max_shift: int):
        super().__init__(images, labels)
        if max_shift < 1:
            raise ValueError(f"max_shift must be >= 1 (0 is no augmentation: use the plain split), got {max_shift}")
        self.max_shift = int(max_shift)

    def batch_augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A training batch (B, C, H, W) with every image shifted (:func:`shift_batch`)."""
        return shift_batch(x, self.max_shift, generator)


def with_shifts(bundle: DataBundle, max_shift: int = 2) -> DataBundle:
    """``bundle`` whose (in-memory) training split is augmented with random shifts of up to
    ``max_shift`` pixels (:class:`ShiftedTensorDataset`); the test split is untouched. The name
    gains ``-shift{max_shift}`` so cache keys tell the augmented run apart."""
    if not isinstance(bundle.train, TensorDataset):
        raise TypeError(f"with_shifts needs an in-memory training split; {bundle.name}'s is {type(bundle.train).__name__}")
    x, y = bundle.train.tensors[:2]
    return replace(bundle, name=f"{bundle.name}-shift{max_shift}", train=ShiftedTensorDataset(x, y, max_shift))


def class_holdout(bundle: DataBundle, share: float, seed: int = 0) -> DataBundle:
    """A validation bundle carved from ``bundle``'s training split: in every class, ``round(share · n_c)``
    of its n_c training images (at most n_c − 1, so each class keeps one) drawn with ``seed`` become
    the evaluation split; the rest is the training split. The test split is never used. E.g. Omniglot's
    15 training drawers per character with ``share = 0.2``: 3 held out, 12 kept, for every class."""
    if not 0 < share < 1:
        raise ValueError(f"share must lie in (0, 1), got {share}")
    labels = _labels_of(bundle.train)
    rng = np.random.default_rng(seed)
    held = []
    for c in range(bundle.num_classes):
        idx = np.flatnonzero(labels == c)
        n = min(len(idx) - 1, int(round(share * len(idx))))
        if n > 0:
            held.append(rng.permutation(idx)[:n])
    val = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), val)
    return DataBundle(f"{bundle.name}-val{share:g}", take(bundle.train, keep), take(bundle.train, val),
                      bundle.class_names, bundle.groups, bundle.image_shape)


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


def load_toy(root: str | Path | None = None, download: bool | None = None, n_train: int = 256, n_test: int = 128,
             seed: int = 0) -> DataBundle:
    """The data set ``"toy"``: :func:`toy_bundle` with 4 classes in two known groups (``left``:
    patches 0 and 2, ``right``: 1 and 3), so the experiments run end to end on it through
    ``load_dataset`` (cut it with a profile's subset sizes). ``root`` and ``download`` are ignored."""
    return replace(toy_bundle(n_train, n_test, 4, seed=seed), groups={"left": [0, 2], "right": [1, 3]})
