"""make reproduce's runner: parameters, failure handling, and a run killed mid-way then resumed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from llcpkg.reproduce import main, parse_params

ROOT = Path(__file__).resolve().parents[1]

TOY_NOTEBOOK = [
    ("params", 'import os\nprofile = os.environ.get("LLC_PROFILE", "smoke")\nepochs = 12'),
    ("code", '''
import pandas as pd
from llcpkg.data import toy_bundle
from llcpkg.experiments import classification_metrics, llc_outputs
from llcpkg.models import ModelConfig
from llcpkg.profiles import get_profile
from llcpkg.results import write_table
from llcpkg.train import TrainConfig, train_baseline
P = get_profile(profile)
data = toy_bundle(n_train=2048, n_test=256, num_classes=4)
t = train_baseline(data, ModelConfig(width=4), TrainConfig(epochs=epochs, lr=0.05, batch_size=64), P.cache_dir)
w = {k: float(v.double().sum()) for k, v in t.model.state_dict().items()}
write_table(pd.DataFrame([{**classification_metrics(llc_outputs(t, data)), **w}]), "toy", P.results_dir)
'''),
]


def _write_nb(path: Path, cells) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, src in cells:
        c = nbformat.v4.new_code_cell(src.strip())
        if kind == "params":
            c.metadata["tags"] = ["parameters"]
        nb.cells.append(c)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _env(tmp: Path, name: str) -> dict:
    return {**os.environ, "LLC_PROFILE": "smoke", "LLC_RESULTS": str(tmp / name / "results"),
            "LLC_CACHE": str(tmp / name / "cache"), "LLC_ROOT": str(ROOT), "OMP_NUM_THREADS": "1"}


def _reproduce(nb: Path, env: dict, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llcpkg.reproduce", str(nb)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **kw)


def test_parse_params():
    assert parse_params("-p bits 16 -p name 'x y' -p rate 0.5") == {"bits": 16, "name": "x y", "rate": 0.5}
    assert parse_params("") == {}
    with pytest.raises(ValueError):
        parse_params("-p bits")


def test_failing_notebook_exits_nonzero_names_it_and_keeps_earlier_results(tmp_path, monkeypatch, capsys):
    nb = tmp_path / "02_exp.ipynb"
    _write_nb(nb, [("params", "x = 1"), ("code", "y = x + 1")])
    for k, v in _env(tmp_path, "run").items():
        monkeypatch.setenv(k, v)
    assert main([str(nb)]) == 0
    executed = tmp_path / "run" / "results" / "executed" / "02_exp.ipynb"
    before = executed.read_bytes()
    _write_nb(nb, [("params", "x = 1"), ("code", "raise RuntimeError('boom')")])  # the experiment breaks
    assert main([str(nb)]) == 1
    assert "02_exp.ipynb" in capsys.readouterr().err
    assert executed.read_bytes() == before  # the last good result survives
    assert not list(executed.parent.glob(".tmp*"))


def test_killed_reproduce_resumes_to_the_same_table(tmp_path):
    nb = _write_nb(tmp_path / "01_toy.ipynb", TOY_NOTEBOOK)
    whole = _env(tmp_path, "whole")
    assert _reproduce(nb, whole).wait(timeout=240) == 0

    cut = _env(tmp_path, "cut")
    proc = _reproduce(nb, cut)
    cache = Path(cut["LLC_CACHE"])
    deadline = time.time() + 200
    while not list(cache.glob("*.partial.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kill the runner and its kernel mid-training
    proc.wait()
    assert list(cache.glob("*.partial.pt")), "the run was not interrupted mid-training"
    assert not (Path(cut["LLC_RESULTS"]) / "tables" / "toy.csv").exists()

    assert _reproduce(nb, cut).wait(timeout=240) == 0
    a = pd.read_csv(Path(whole["LLC_RESULTS"]) / "tables" / "toy.csv")
    b = pd.read_csv(Path(cut["LLC_RESULTS"]) / "tables" / "toy.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not list(cache.glob("*.partial.pt"))
