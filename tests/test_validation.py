"""Bad input gets a clear error naming what is wrong and the fix: data bundles, data files
and roots, configs, code length, decoders and evaluation labels."""
import gzip
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import llcpkg.data as D
from llcpkg import decode, metrics, pipeline
from llcpkg.compress import CompressionConfig, NetSpec
from llcpkg.data import DataBundle, load_dataset, toy_bundle
from llcpkg.models import ModelConfig, SmallCNN
from llcpkg.profiles import Profile, get_profile
from llcpkg.train import LOSSES, TrainConfig, fit, train_phase1


def _bundle(train_x=None, train_y=None, test_x=None, test_y=None, shape=(1, 8, 8)):
    t = toy_bundle(n_train=16, n_test=8)
    tr, te = t.train.tensors, t.test.tensors
    return DataBundle("mine", TensorDataset(tr[0] if train_x is None else train_x, tr[1] if train_y is None else train_y),
                      TensorDataset(te[0] if test_x is None else test_x, te[1] if test_y is None else test_y),
                      t.class_names, None, shape)


# ----------------------------------------------------------------------------- bundles
def test_one_nan_training_image_is_refused_naming_the_split():
    x = toy_bundle(n_train=16).train.tensors[0].clone()
    x[5, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match=r"mine train split holds 1 image\(s\) with NaN or inf .*position 5"):
        _bundle(train_x=x)


def test_all_nan_test_images_are_refused_naming_the_split():
    with pytest.raises(ValueError, match="mine test split holds 8 image"):
        _bundle(test_x=torch.full((8, 1, 8, 8), float("nan")))


def test_inf_survives_subset_and_is_refused():
    x = toy_bundle(n_train=16).train.tensors[0].clone()
    x[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        _bundle(train_x=x)


def test_empty_training_split_is_refused():
    with pytest.raises(ValueError, match="mine train split is empty"):
        _bundle(train_x=torch.zeros(0, 1, 8, 8), train_y=torch.zeros(0, dtype=torch.long))


def test_empty_test_split_is_refused():
    with pytest.raises(ValueError, match="mine test split is empty"):
        _bundle(test_x=torch.zeros(0, 1, 8, 8), test_y=torch.zeros(0, dtype=torch.long))


def test_subset_to_zero_examples_is_refused():
    with pytest.raises(ValueError, match="test split is empty"):
        D.subset(toy_bundle(), 10, 0)


def test_test_labels_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match=r"mine test split labels must lie in \[0, 4\); got range \[0, 9\]"):
        _bundle(test_y=torch.tensor([0, 1, 2, 3, 9, 0, 1, 2]))


def test_float_labels_are_refused():
    y = toy_bundle(n_train=16).train.tensors[1].float()
    with pytest.raises(TypeError, match="train split labels must be integer class indices; got dtype torch.float32"):
        _bundle(train_y=y)


def test_uint8_images_are_refused():
    x = torch.zeros(16, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"holds torch.uint8 images.*x.float\(\) / 255"):
        _bundle(train_x=x)


def test_images_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\), but the bundle's image_shape is \(3, 8, 8\)"):
        _bundle(shape=(3, 8, 8))


class _NumpyImages(Dataset):
    """A lazily read set that yields numpy arrays, as a hand-written Dataset might."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.zeros((1, 8, 8), np.float32), i % 2


def test_numpy_images_from_a_lazy_dataset_are_refused():
    t = toy_bundle(n_train=16, n_test=8)
    with pytest.raises(TypeError, match="yields images of type ndarray.*torch.from_numpy"):
        DataBundle("lazy", _NumpyImages(), t.test, t.class_names, None, (1, 8, 8))


def test_models_refuse_uint8_and_numpy_images():
    net = SmallCNN(1, 4)
    with pytest.raises(TypeError, match="float image tensors"):
        net(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="got ndarray"):
        net(np.zeros((2, 1, 8, 8), np.float32))


def test_fit_refuses_an_empty_split_before_training():
    from llcpkg.models import build_model

    model = build_model(ModelConfig(width=4), 1, 4)
    empty = TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="baseline: the training split is empty"):
        fit(model, empty, LOSSES["ce"], TrainConfig(epochs=1), desc="baseline")


# ----------------------------------------------------------------------------- Fashion-MNIST files and roots
def _idx_bytes(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + a.astype(np.uint8).tobytes()


def _fake_fmnist(root, n=(6, 4)):
    """The four Fashion-MNIST .gz files holding n[0] train and n[1] test images."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for (img, lab), m in zip(D._FMNIST_FILES.values(), n):
        (root / img).write_bytes(gzip.compress(_idx_bytes(rng.integers(0, 256, (m, 28, 28)))))
        (root / lab).write_bytes(gzip.compress(_idx_bytes(np.arange(m) % 10)))
    return root


def test_fake_fmnist_folder_loads(tmp_path):
    b = load_dataset("fashion_mnist", root=_fake_fmnist(tmp_path), download=False)
    assert len(b.train) == 6 and len(b.test) == 4


def test_truncated_gz_names_the_file_and_the_fix(tmp_path):
    root = _fake_fmnist(tmp_path)
    f = root / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is damaged .*reinstall dataset-fashion-mnist.*"
                                         r"LLC_FMNIST_ROOT"):
        load_dataset("fashion_mnist", root=root, download=False)


def test_zero_byte_labels_file_names_the_file_and_the_fix(tmp_path):
    root = _fake_fmnist(tmp_path)
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz is empty or truncated.*dataset-fashion-mnist"):
        load_dataset("fashion_mnist", root=root, download=False)


@pytest.fixture
def no_standard_fmnist(tmp_path, monkeypatch):
    """The standard places exist but are empty of data only if named: point them at a real copy,
    so that a silent fall-back would load instead of failing."""
    monkeypatch.setattr(D, "DEBIAN_FMNIST", _fake_fmnist(tmp_path / "debian"))
    monkeypatch.delenv("LLC_FMNIST_ROOT", raising=False)
    return tmp_path


def test_explicit_empty_root_is_an_error_not_a_fallback(no_standard_fmnist):
    empty = no_standard_fmnist / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=rf"root= {empty} lacks train-images-idx3-ubyte.gz"):
        load_dataset("fashion_mnist", root=empty, download=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset("fashion_mnist", root=no_standard_fmnist / "missing", download=False)
    with pytest.raises(ValueError, match="root is an empty string"):
        load_dataset("fashion_mnist", root="", download=False)
    assert len(load_dataset("fashion_mnist", download=False).train) == 6  # unnamed: the standard place


def test_explicit_empty_env_root_is_an_error_not_a_fallback(no_standard_fmnist, monkeypatch):
    empty = no_standard_fmnist / "empty"
    empty.mkdir()
    monkeypatch.setenv("LLC_FMNIST_ROOT", str(empty))
    with pytest.raises(FileNotFoundError, match=r"\$LLC_FMNIST_ROOT .*lacks"):
        load_dataset("fashion_mnist", download=False)


def _offline(monkeypatch):
    def refuse(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)


def test_offline_download_keeps_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "DEBIAN_FMNIST", tmp_path / "nowhere")
    monkeypatch.setattr(D, "DOWNLOAD_CACHE", tmp_path / "cache")
    monkeypatch.delenv("LLC_FMNIST_ROOT", raising=False)
    _offline(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"(?s)downloading it failed .*apt-get install -y dataset-fashion-mnist.*"
                                                r"LLC_FMNIST_ROOT.*FashionMNIST/raw"):
        load_dataset("fashion_mnist", download=True)


def test_offline_omniglot_download_keeps_the_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "DOWNLOAD_CACHE", tmp_path / "cache")
    monkeypatch.delenv("LLC_OMNIGLOT_ROOT", raising=False)
    _offline(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"(?s)URLError.*LLC_OMNIGLOT_ROOT"):
        load_dataset("omniglot", download=True)


def test_offline_cifar_download_names_the_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv("LLC_CIFAR_ROOT", raising=False)
    _offline(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"(?s)cifar10 not found under .*LLC_CIFAR_ROOT.*URLError"):
        load_dataset("cifar10", root=tmp_path, download=True)


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("cls, kw, err, field", [
    (ModelConfig, dict(bits=2.5), TypeError, "ModelConfig.bits"),
    (ModelConfig, dict(bits="8"), TypeError, "ModelConfig.bits"),
    (ModelConfig, dict(bits=True), TypeError, "ModelConfig.bits"),
    (ModelConfig, dict(head="llc", bits=0), ValueError, "ModelConfig.bits"),
    (ModelConfig, dict(width=0), ValueError, "ModelConfig.width"),
    (ModelConfig, dict(backbone="vgg"), ValueError, "ModelConfig.backbone"),
    (TrainConfig, dict(epochs=0), ValueError, "TrainConfig.epochs"),
    (TrainConfig, dict(epochs=2.0), TypeError, "TrainConfig.epochs"),
    (TrainConfig, dict(lr=0), ValueError, "TrainConfig.lr"),
    (TrainConfig, dict(lr=float("nan")), ValueError, "TrainConfig.lr"),
    (TrainConfig, dict(lr="0.1"), TypeError, "TrainConfig.lr"),
    (TrainConfig, dict(batch_size=0), ValueError, "TrainConfig.batch_size"),
    (TrainConfig, dict(momentum=1.0), ValueError, "TrainConfig.momentum"),
    (TrainConfig, dict(label_smoothing=-0.1), ValueError, "TrainConfig.label_smoothing"),
    (TrainConfig, dict(device="gpu0"), ValueError, "TrainConfig.device"),
    (TrainConfig, dict(channels_last=1), TypeError, "TrainConfig.channels_last"),
    (CompressionConfig, dict(factor=0.0), ValueError, "CompressionConfig.factor"),
    (CompressionConfig, dict(factor="1/8"), TypeError, "CompressionConfig.factor"),
    (CompressionConfig, dict(method="zip"), ValueError, "CompressionConfig.method"),
    (CompressionConfig, dict(hashes=2.5), TypeError, "CompressionConfig.hashes"),
    (NetSpec, dict(name="n", kind="rnn"), ValueError, "NetSpec.kind"),
    (NetSpec, dict(name="n", hidden=(100, 0)), TypeError, "NetSpec.hidden"),
])
def test_config_fields_are_checked_at_construction(cls, kw, err, field):
    with pytest.raises(err, match=field.replace(".", r"\.")):
        cls(**kw)


@pytest.mark.parametrize("kw, err, field", [(dict(batch_size=0), ValueError, "batch_size"),
                                            (dict(baseline_epochs=1.5), TypeError, "baseline_epochs"),
                                            (dict(train_subset=0), ValueError, "train_subset"),
                                            (dict(backbone="vgg"), ValueError, "backbone")])
def test_profile_fields_are_checked(kw, err, field):
    with pytest.raises(err, match=rf"Profile\.{field}"):
        get_profile("smoke", **kw)


def test_valid_configs_are_normalised():
    assert type(ModelConfig(bits=np.int64(8)).bits) is int
    assert NetSpec("n", hidden=[300, 100]).hidden == (300, 100)
    assert Profile("p", None, None, 1, 1, 1, 8, 4).train_subset is None


class _Trains(Exception):
    pass


@pytest.fixture
def no_training(monkeypatch):
    """run_llc must decide about ``bits`` before the baseline trains: training raises _Trains."""
    monkeypatch.setattr(pipeline, "train_baseline", lambda *a, **k: (_ for _ in ()).throw(_Trains()))


@pytest.mark.parametrize("bits, err", [(2.5, TypeError), ("8", TypeError), (0, ValueError), (-3, ValueError)])
def test_run_llc_checks_bits_before_the_baseline_trains(toy_bundle, no_training, bits, err):
    with pytest.raises(err, match="bits"):
        pipeline.run_llc(toy_bundle, get_profile("smoke"), bits)


def test_too_few_bits_warn_before_the_baseline_trains(toy_bundle, no_training):
    with pytest.warns(UserWarning, match=r"bits = 1 < ceil\(log2 4\) = 2"):
        with pytest.raises(_Trains):
            pipeline.run_llc(toy_bundle, get_profile("smoke"), 1)


def test_enough_bits_do_not_warn(toy_bundle, no_training, recwarn):
    with pytest.raises(_Trains):
        pipeline.run_llc(toy_bundle, get_profile("smoke"), 2)
    assert not [w for w in recwarn if "ceil(log2" in str(w.message)]


def test_train_phase1_warns_on_too_few_bits(toy_bundle, monkeypatch):
    import llcpkg.train as T

    monkeypatch.setattr(T, "run_stage", lambda *a, **k: (_ for _ in ()).throw(_Trains()))
    with pytest.warns(UserWarning, match="cannot all get distinct 1-bit codes"):
        with pytest.raises(_Trains):
            train_phase1(toy_bundle, ModelConfig(width=4, bits=1), TrainConfig(epochs=1), None)


# ----------------------------------------------------------------------------- decoders and metrics
CODES = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]], np.uint8)  # 4 classes, 3 bits


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", sorted(decode.DECODERS))
def test_every_registered_decoder_refuses_non_finite_scores(name, bad):
    z = np.array([[0.5, -1.0, 2.0], [1.0, bad, -0.3]])
    with pytest.raises(ValueError, match="NaN or inf values in 1 of 2 rows"):
        decode.decode(name, z, CODES)


def test_mips_refuses_nan_queries_and_codebooks():
    with pytest.raises(ValueError, match="query_real holds NaN"):
        decode.mips_decode(np.array([[np.nan, 0.0, 1.0]]), 2.0 * CODES - 1)
    with pytest.raises(ValueError, match="codebook holds NaN"):
        decode.mips_decode(np.ones((2, 3)), np.array([[np.nan, 1, 1], [1, 1, 1]]))


def test_mhd_score_ties_refuse_nan_scores():
    bits = np.array([[0, 0, 1]], np.uint8)  # distance 1 to classes 0, 1 and 2: a tie
    with pytest.raises(ValueError, match="scores holds NaN"):
        decode.mhd_decode(bits, CODES, tie="score", scores=np.array([[np.nan, 0.1, 0.2]]))
    # <scores, 2 code - 1> over the tied classes: 0 -> -0.4, 1 -> -0.2, 2 -> 0.6
    assert decode.mhd_decode(bits, CODES, tie="score", scores=np.array([[0.3, -0.1, 0.2]])).pred.tolist() == [2]


def test_signs_to_bits_refuses_nan():
    with pytest.raises(ValueError, match="NaN"):
        decode.signs_to_bits(torch.tensor([[0.1, float("nan")]]))


def test_mips_with_no_queries_returns_an_empty_result():
    pred = decode.mips_decode(np.zeros((0, 3)), 2.0 * CODES - 1)
    assert pred.shape == (0,) and pred.dtype == np.int64
    with pytest.raises(ValueError, match="no classes"):
        decode.mips_decode(np.zeros((2, 3)), np.zeros((0, 3)))


def _llc_out(labels):
    z = np.array([[-1.0, -1.0, -1.0], [-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
    return {"labels": np.asarray(labels), "class_bits": CODES, "bit_logits": z, "outputs": z}


def test_metrics_refuse_labels_outside_the_classes(monkeypatch):
    assert metrics.classification_metrics(_llc_out([0, 1, 2, 3]))["mhd"] == 1.0
    monkeypatch.setattr(decode, "mhd_decode", lambda *a, **k: pytest.fail("decoded before checking labels"))
    with pytest.raises(ValueError, match=r"evaluation labels must lie in \[0, 4\); got range \[0, 4\]"):
        metrics.classification_metrics(_llc_out([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="must lie in"):
        metrics.classification_metrics(_llc_out([-1, 1, 2, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        metrics.classification_metrics(_llc_out([0.0, 1.0, 2.0, 3.0]))


def test_linear_head_metrics_refuse_labels_outside_the_classes():
    out = {"labels": np.array([0, 5]), "outputs": np.eye(2, 3)}
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        metrics.classification_metrics(out)
