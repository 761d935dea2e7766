"""Training: the two phases on a separable toy problem, the cache, resume and bad input."""
import pytest
import torch

from llcpkg.metrics import classification_metrics, llc_outputs
from llcpkg.models import ModelConfig
from llcpkg.train import TrainConfig, fit, LOSSES, train_baseline, train_phase1, train_phase2
from llcpkg.models import build_model

CFG = TrainConfig(epochs=3, lr=0.05, batch_size=32)
MODEL = ModelConfig(width=4, bits=4)


def test_two_phases_solve_a_separable_problem(toy_bundle, tmp_path):
    base = train_baseline(toy_bundle, MODEL, CFG, tmp_path)
    p1 = train_phase1(toy_bundle, MODEL, CFG, tmp_path, warm_start=base)
    p2 = train_phase2(p1, toy_bundle, TrainConfig(epochs=3, lr=0.05, batch_size=32, label_smoothing=0.0), tmp_path)
    m = classification_metrics(llc_outputs(p2, toy_bundle))
    assert m["distinct_codes"] == 4
    assert m["mhd"] >= 0.97 and m["ed"] >= 0.9
    # phase 2 leaves the class codes untouched
    assert torch.equal(p1.model.head.class_codes(), p2.model.head.class_codes())


def test_cache_hit_skips_training_and_miss_trains(toy_bundle, tmp_path, monkeypatch):
    first = train_baseline(toy_bundle, MODEL, CFG, tmp_path)
    calls = []
    import llcpkg.train as T

    monkeypatch.setattr(T, "fit", lambda *a, **k: calls.append(1) or [0.0] * CFG.epochs)
    again = train_baseline(toy_bundle, MODEL, CFG, tmp_path)
    assert calls == [] and again.key == first.key
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    other = train_baseline(toy_bundle, MODEL, TrainConfig(epochs=3, lr=0.05, batch_size=32, seed=1), tmp_path)
    assert calls == [1] and other.key != first.key


def test_interrupted_stage_resumes_to_the_same_weights(toy_bundle, tmp_path):
    whole = train_baseline(toy_bundle, MODEL, CFG, tmp_path / "a")
    cut = train_baseline(toy_bundle, MODEL, CFG, tmp_path / "b", stop_after=1)  # "killed" after epoch 1
    assert not list((tmp_path / "b").glob("baseline-*[0-9a-f].pt"))  # no final checkpoint yet
    assert list((tmp_path / "b").glob("*.partial.pt"))
    resumed = train_baseline(toy_bundle, MODEL, CFG, tmp_path / "b")
    assert resumed.key == whole.key and cut.key == whole.key
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert not list((tmp_path / "b").glob("*.partial.pt"))


def test_one_progress_bar_per_stage_counts_every_step(toy_bundle, tmp_path, monkeypatch):
    import llcpkg.train as T

    bars = []

    class Recording(T.tqdm):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.drawn = not self.disable  # tqdm sets disable on close
            bars.append(self)

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(T, "tqdm", Recording)
    steps = -(-len(toy_bundle.train) // CFG.batch_size)
    train_baseline(toy_bundle, MODEL, CFG, tmp_path / "a", stop_after=1)  # interrupted after epoch 1 ...
    train_baseline(toy_bundle, MODEL, CFG, tmp_path / "a")  # ... then resumed: a bar for the epochs left
    assert [b.total for b in bars] == [CFG.epochs * steps, (CFG.epochs - 1) * steps]
    assert [b.n for b in bars] == [steps, (CFG.epochs - 1) * steps] and all(b.drawn for b in bars)
    monkeypatch.setenv("TQDM_DISABLE", "1")  # make reproduce: no bar drawn
    train_baseline(toy_bundle, MODEL, CFG, None)
    assert len(bars) == 3 and not bars[-1].drawn


def test_same_seed_same_weights(toy_bundle):
    a = train_baseline(toy_bundle, MODEL, CFG, None).model.state_dict()
    b = train_baseline(toy_bundle, MODEL, CFG, None).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_labels_outside_range_are_rejected(toy_bundle):
    model = build_model(MODEL, 1, 4)
    bad = torch.utils.data.TensorDataset(toy_bundle.train.tensors[0][:8], torch.tensor([0, 1, 2, 3, 4, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        fit(model, bad, LOSSES["ce"], CFG)


def test_phase1_rejects_zero_bits(toy_bundle):
    with pytest.raises(ValueError, match="bits"):
        train_phase1(toy_bundle, ModelConfig(width=4, bits=0), CFG, None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_training_and_prediction_on_gpu(toy_bundle):
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=32, device="cuda")
    base = train_baseline(toy_bundle, MODEL, cfg, None)
    p1 = train_phase1(toy_bundle, MODEL, cfg, None, warm_start=base)
    m = classification_metrics(llc_outputs(p1, toy_bundle, device="cuda"))
    assert m["mips"] > 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_predict_leaves_the_model_on_its_device(toy_bundle):
    from llcpkg.models import ModelConfig, build_model
    from llcpkg.train import predict

    model = build_model(ModelConfig(width=2), 1, toy_bundle.num_classes)
    predict(model, toy_bundle.test, device="cuda")
    assert all(p.device.type == "cpu" for p in model.parameters())
