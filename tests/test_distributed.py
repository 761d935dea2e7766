"""Data-parallel training under torchrun (gloo, CPU) on a tiny generated ImageFolder:
2 processes equal 1 with the same global batch, only rank 0 writes, a killed run resumes,
bad launches fail clearly. Launches are subprocesses of ``python -m torch.distributed.run``."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from llcpkg import distributed
from llcpkg.pipeline import stage_configs
from llcpkg.models import ModelConfig, build_model
from llcpkg.profiles import PROFILES
from llcpkg.train import TrainConfig, set_seed, stage_key

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5  # float32 rounding: the all-reduces sum in another order than one process does
# a SmallCNN of width 4 on 16×16 images, one epoch at the cpu profile's lr 0.1, momentum 0.9
COMMON = ["--profile", "cpu", "--data", "imagefolder", "--size", "16", "--no-augment", "--backbone", "smallcnn",
          "--width", "4", "--device", "cpu", "--workers", "0"]

AUDIT = '''"""Run llcpkg.distributed, logging every file this rank creates, renames or removes under $AUDIT_DIR."""
import os, runpy, sys
watched, log = os.environ["AUDIT_DIR"], open(os.path.join(os.environ["AUDIT_LOG"], "rank" + os.environ["RANK"]), "w")
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITE)
    elif event in ("os.rename", "os.remove", "os.mkdir"):
        path, writes = args[0], True
    else:
        return
    if writes and isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(watched):
        log.write(f"{event} {os.fspath(path)}\\n")
        log.flush()

sys.addaudithook(hook)
runpy.run_module("llcpkg.distributed", run_name="__main__", alter_sys=True)
'''


def make_folder(root: Path, per_class: int, classes: int = 3, size: int = 16) -> Path:
    """root/train/c*/ and root/val/c*/ with ``per_class`` random PNGs each, class c brighter in channel c % 3."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", max(per_class // 2, 1))):
        for c in range(classes):
            (root / split / f"c{c}").mkdir(parents=True)
            for i in range(n):
                img = (rng.random((size, size, 3)) * 80).astype(np.uint8)
                img[..., c % 3] += 150
                Image.fromarray(img).save(root / split / f"c{c}" / f"{i}.png")
    return root


@pytest.fixture
def folder(tmp_path):
    """24 training images of 3 classes (divisible by 2 ranks), 16×16 RGB."""
    return make_folder(tmp_path / "folder", per_class=8)


def torchrun(nproc: int, args: list[str], script: str | None = None, env: dict | None = None,
             **popen) -> subprocess.Popen:
    """Start ``torchrun --standalone --nproc_per_node=nproc`` on llcpkg.distributed (or ``script``)."""
    target = [script] if script else ["-m", "llcpkg.distributed"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *target, *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(proc: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def checkpoints(cache: Path, stage: str) -> dict[str, torch.Tensor]:
    (path,) = [p for p in cache.glob(f"{stage}-*.pt") if not p.name.endswith(".partial.pt")]
    return torch.load(path, weights_only=True)


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, todo = [], [pid]
    while todo:
        me = todo.pop()
        kids = [c for c, p in parent.items() if p == me]
        out += kids
        todo += kids
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_in_process_world_of_one(args: list[str], monkeypatch) -> None:
    """``main(args)`` as rank 0 of a 1-process gloo group (what torchrun --nproc_per_node=1 does)."""
    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(k, v)
    assert distributed.main(args) == 0


# ----------------------------------------------------------------------------- fast (default suite)
def test_two_processes_equal_one_with_the_same_global_batch_and_only_rank0_writes(folder, tmp_path, monkeypatch):
    one, two, log = tmp_path / "one", tmp_path / "two", tmp_path / "log"
    log.mkdir()
    run_in_process_world_of_one([*COMMON, "--root", str(folder), "--stage", "baseline", "--epochs", "1",
                                 "--batch-size", "8", "--cache", str(one)], monkeypatch)
    script = tmp_path / "audit.py"
    script.write_text(AUDIT)
    res = finish(torchrun(2, [*COMMON, "--root", str(folder), "--stage", "baseline", "--epochs", "1",
                              "--batch-size", "4", "--cache", str(two)], script=str(script),
                          env={"AUDIT_DIR": str(two), "AUDIT_LOG": str(log)}))
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = checkpoints(one, "baseline"), checkpoints(two, "baseline")
    set_seed(0)
    init = build_model(ModelConfig("smallcnn", 4, "linear", 0), 3, 3).state_dict()
    assert max_diff(a, init) > 100 * TOL  # training moved the weights far more than the tolerance
    assert max_diff(a, b) < TOL
    assert '"global_batch": 8' in res.stdout and '"world": 2' in res.stdout
    rank0, rank1 = (log / "rank0").read_text(), (log / "rank1").read_text()
    assert "os.rename" in rank0 and "baseline-" in rank0  # rank 0 wrote the checkpoints
    assert rank1 == ""  # rank 1 wrote nothing under the cache


def test_default_cache_keys_are_unchanged():
    """The keys of the cpu/smoke/gpu stages as they were before the distributed mode existed."""
    assert stage_key(train=TrainConfig()) == "ae5f27b767908c9b"
    assert stage_key(train=TrainConfig(precision="bf16")) != "ae5f27b767908c9b"
    want = {"smoke": ("c97e9f4d6f67c8b2", "c97e9f4d6f67c8b2", "83a377ad99cffd21"),
            "cpu": ("b423b6daff8e2e7e", "96955b1de8b2760d", "fae3ef81ce0bf85e"),
            "gpu": ("29c41b8ddb039975", "29c41b8ddb039975", "c6180c4289ec2ea9")}
    for name, keys in want.items():
        cfgs = stage_configs(PROFILES[name], 60000)
        assert tuple(stage_key(train=cfgs[s]) for s in ("baseline", "phase1", "phase2")) == keys, name


def test_imagenet_profile_is_the_official_recipe_with_linear_lr_scaling():
    p = PROFILES["imagenet"]
    cfgs = stage_configs(p, 1_281_167)
    assert p.backbone == "resnet50" and p.logit_scale == "none"
    assert (cfgs["phase1"].epochs, cfgs["phase1"].lr, cfgs["phase1"].momentum) == (100, 0.1, 0.875)
    assert cfgs["phase1"].weight_decay == pytest.approx(3.05e-5, rel=1e-3) and cfgs["phase1"].label_smoothing == 0.1
    assert (cfgs["phase2"].epochs, cfgs["phase2"].lr) == (25, 0.01)
    args = distributed.parse_args(["--root", "x", "--batch-size", "128"])
    scaled = distributed.configs_for(args, p, 1_281_167, world=8)  # global batch 1024
    assert scaled["phase1"].batch_size == 1024 and scaled["phase1"].lr == pytest.approx(0.4)
    assert scaled["phase2"].lr == pytest.approx(0.04)


def test_missing_root_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as e:
        distributed.main(["--data", "imagefolder", "--stage", "phase1"])
    assert e.value.code == 2 and "--root is required with --data imagefolder" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(folder):
    with pytest.raises(SystemExit, match="CUDA is not available on this machine"):
        distributed.main(["--root", str(folder), "--device", "cuda"])


# ----------------------------------------------------------------------------- slow (make test-slow)
@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_same_result(folder, tmp_path):
    args = [*COMMON, "--root", str(folder), "--stage", "baseline", "--epochs", "6", "--batch-size", "2"]
    whole = finish(torchrun(2, [*args, "--cache", str(tmp_path / "whole")]))
    assert whole.returncode == 0, whole.stderr[-3000:]
    cut = tmp_path / "cut"
    proc = torchrun(2, [*args, "--cache", str(cut)])
    while not list(cut.glob("*.partial.pt")) and proc.poll() is None:
        time.sleep(0.02)
    for pid in [*descendants(proc.pid), proc.pid]:  # both ranks and torchrun, in the middle of epoch 2
        os.kill(pid, signal.SIGKILL)
    proc.communicate()
    if [p for p in cut.glob("baseline-*.pt") if not p.name.endswith(".partial.pt")]:
        pytest.skip("the run finished before it could be killed")
    assert proc.returncode == -signal.SIGKILL
    resumed = finish(torchrun(2, [*args, "--cache", str(cut)]))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max_diff(checkpoints(tmp_path / "whole", "baseline"), checkpoints(cut, "baseline")) < TOL
    assert not list(cut.glob("*.partial.pt"))


FIT_TOY = '''"""fit() on the 29-image toy set under torchrun; rank 0 saves the weights to argv[1]."""
import sys, torch
from llcpkg import parallel
from llcpkg.data import toy_bundle
from llcpkg.models import ModelConfig, build_model
from llcpkg.train import LOSSES, TrainConfig, fit, set_seed

ctx = parallel.init("cpu")
set_seed(0)
model = build_model(ModelConfig(width=4), 1, 4)
fit(model, toy_bundle(n_train=29, n_test=4).train, LOSSES["ce"], TrainConfig(epochs=2, lr=0.1, batch_size=8),
    progress=False)
if ctx.rank == 0:
    torch.save(model.state_dict(), sys.argv[1])
parallel.shutdown()
'''


@pytest.mark.slow
def test_in_memory_set_on_two_processes_equals_the_plain_single_process_fit(tmp_path):
    """TensorDataset path: the last global batch of 29 = 3·8 + 5 splits 3/2 over the ranks, so
    the losses are weighted 6/5 and 4/5; the plain (non-distributed) fit is the reference."""
    from llcpkg.data import toy_bundle
    from llcpkg.train import LOSSES, fit

    script, out = tmp_path / "fit_toy.py", tmp_path / "two.pt"
    script.write_text(FIT_TOY)
    res = finish(torchrun(2, [str(out)], script=str(script)))
    assert res.returncode == 0, res.stderr[-3000:]
    set_seed(0)
    model = build_model(ModelConfig(width=4), 1, 4)
    fit(model, toy_bundle(n_train=29, n_test=4).train, LOSSES["ce"], TrainConfig(epochs=2, lr=0.1, batch_size=8),
        progress=False)
    set_seed(0)
    init = build_model(ModelConfig(width=4), 1, 4).state_dict()
    assert max_diff(model.state_dict(), init) > 100 * TOL
    assert max_diff(model.state_dict(), torch.load(out, weights_only=True)) < TOL


@pytest.mark.slow
def test_world_larger_than_the_data_is_a_clear_error(tmp_path):
    tiny = make_folder(tmp_path / "tiny", per_class=1, classes=1)
    res = finish(torchrun(2, [*COMMON, "--root", str(tiny), "--stage", "baseline", "--cache", str(tmp_path / "c")]))
    assert res.returncode != 0
    assert "world size 2 is larger than the 1 training images" in res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("stage, extra, written", [
    ("phase2", [], ("baseline", "phase1", "phase2")),
    ("compressed-llc", ["--method", "hfh", "--factor", "8"], ("compress", "phase1", "phase2")),
])
def test_every_stage_trains_on_two_processes(folder, tmp_path, stage, extra, written):
    cache = tmp_path / "cache"
    res = finish(torchrun(2, [*COMMON, "--root", str(folder), "--stage", stage, "--epochs", "1", "--batch-size", "4",
                              "--cache", str(cache), *extra]))
    assert res.returncode == 0, res.stderr[-3000:]
    for s in written:
        assert all(torch.isfinite(t).all() for t in checkpoints(cache, s).values() if t.is_floating_point()), s
    assert not list(cache.glob("*.partial.pt"))
