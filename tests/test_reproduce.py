"""make reproduce's runner: parameters, failure handling, and a run killed mid-way then resumed."""
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from llcpkg.reproduce import absolute_path_cells, main, parse_params

ROOT = Path(__file__).resolve().parents[1]

TOY_NOTEBOOK = [
    ("params", 'import os\nprofile = os.environ.get("LLC_PROFILE", "smoke")\nepochs = 12'),
    ("code", '''
import pandas as pd
from llcpkg.data import toy_bundle
from llcpkg.metrics import classification_metrics, llc_outputs
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
    path.parent.mkdir(parents=True, exist_ok=True)
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


# ---- parameters, results/runs/<name>, staging, provenance, paths ---------------------------------

WRITE_X = ("code", "import pandas as pd\nfrom llcpkg.profiles import get_profile\nfrom llcpkg.results import write_table\n"
                   "write_table(pd.DataFrame({'x': [x]}), 't', get_profile('smoke').results_dir);")


def _smoke_env(monkeypatch, results: Path) -> None:
    monkeypatch.setenv("LLC_PROFILE", "smoke")
    monkeypatch.setenv("LLC_RESULTS", str(results))
    monkeypatch.setenv("LLC_ROOT", str(ROOT))


@pytest.mark.parametrize("args, message", [
    ("-p bogus_param 3", "unknown parameter 'bogus_param' for 01_exp.ipynb; its parameters are: x, datasets"),
    ("-p datasets mnist", "-p datasets \"['mnist']\""),
])
def test_bad_parameters_exit_2_before_anything_runs(tmp_path, monkeypatch, capsys, args, message):
    nb = _write_nb(tmp_path / "01_exp.ipynb", [("params", "x = 1\ndatasets = ['a']"), ("code", "raise SystemExit")])
    _smoke_env(monkeypatch, tmp_path / "results")
    assert main([str(nb), "--papermill-args", args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_custom_parameters_go_to_runs_and_leave_committed_results_alone(tmp_path, monkeypatch):
    nb = _write_nb(tmp_path / "01_exp.ipynb", [("params", "x = 1"), WRITE_X])
    results = tmp_path / "results"
    _smoke_env(monkeypatch, results)
    assert main([str(nb)]) == 0  # the defaults: the committed run
    committed = (results / "tables" / "t.csv").read_bytes()
    assert main([str(nb), "--papermill-args", "-p x 2"]) == 0
    run = results / "runs" / "01_exp__x=2"
    assert pd.read_csv(run / "tables" / "t.csv")["x"].tolist() == [2]
    assert (run / "executed" / "01_exp.ipynb").exists() and (run / "provenance.json").exists()
    assert (results / "tables" / "t.csv").read_bytes() == committed
    assert main([str(nb), "--papermill-args", "-p x 1"]) == 0  # the default value again: not custom
    assert sorted(p.name for p in (results / "runs").iterdir()) == ["01_exp__x=2"]
    assert main([str(nb), "--papermill-args", "-p x 3", "--into-results"]) == 0
    assert pd.read_csv(results / "tables" / "t.csv")["x"].tolist() == [3]


def test_a_notebook_failing_midway_changes_no_table(tmp_path, monkeypatch):
    nb = _write_nb(tmp_path / "01_exp.ipynb", [("params", "x = 1"), WRITE_X])
    results = tmp_path / "results"
    _smoke_env(monkeypatch, results)
    assert main([str(nb), "--papermill-args", "-p x 1"]) == 0
    before = (results / "tables" / "t.csv").read_bytes()
    _write_nb(nb, [("params", "x = 1"), ("code", "x = 5"), WRITE_X, ("code", "raise RuntimeError('late')")])
    assert main([str(nb)]) == 1
    assert (results / "tables" / "t.csv").read_bytes() == before  # the table of the failed run was only staged
    assert sorted(p.name for p in results.iterdir()) == ["executed", "provenance.json", "tables"]


def test_provenance_per_notebook_and_no_absolute_path(tmp_path, monkeypatch):
    from test_provenance import check_schema

    proj = tmp_path / "proj"  # a project root of its own: every path printed or stored is under it
    a = _write_nb(proj / "notebooks" / "01_a.ipynb", [("params", "seed = 0\nx = 1"), WRITE_X, ("code", (
        "from llcpkg.results import relative_to_root\nprint(relative_to_root(get_profile('smoke').results_dir))"))])
    b = _write_nb(proj / "notebooks" / "02_b.ipynb", [("params", "x = 1"), ("code", "x")])
    monkeypatch.setenv("LLC_PROFILE", "smoke")
    monkeypatch.setenv("LLC_ROOT", str(proj))
    monkeypatch.delenv("LLC_RESULTS", raising=False)
    results = proj / ".cache" / "smoke-results"
    assert main([str(a), str(b)]) == 0
    doc = json.loads((results / "provenance.json").read_text())
    check_schema(doc)
    assert doc["profile"] == "smoke" and doc["notebooks"]["01_a"]["seeds"] == [0]
    assert doc["notebooks"]["01_a"]["parameters"] == {"seed": 0, "x": 1}
    executed = results / "executed" / "01_a.ipynb"
    text = executed.read_text()
    assert str(tmp_path) not in text and str(ROOT) not in text
    meta = nbformat.read(executed, as_version=4).metadata
    assert meta["papermill"]["output_path"] == ".cache/smoke-results/executed/01_a.ipynb"
    assert meta["provenance"]["notebooks"]["01_a"]["parameters"] == {"seed": 0, "x": 1}
    b_entry = doc["notebooks"]["02_b"]
    assert main([str(a), "--papermill-args", "-p seed 4", "--into-results"]) == 0
    doc = json.loads((results / "provenance.json").read_text())
    assert doc["notebooks"]["01_a"]["seeds"] == [4] and doc["notebooks"]["02_b"] == b_entry


def test_absolute_path_cells_finds_a_printed_path(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1", outputs=[nbformat.v4.new_output("stream", text="results/x.png\n")]),
                nbformat.v4.new_code_cell("p", outputs=[nbformat.v4.new_output(
                    "execute_result", data={"text/plain": "PosixPath('/home/u/llcpkg/results/x.png')"})])]
    nbformat.write(nb, tmp_path / "n.ipynb")
    assert absolute_path_cells(tmp_path / "n.ipynb", ["/home/u/llcpkg"]) == [1]


def test_no_notebook_displays_the_path_a_result_was_written_to():
    """A cell ending in save_figure(...) or write_table(...) shows an absolute PosixPath: end it with ';'."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            body = ast.parse(cell.source).body if cell.cell_type == "code" else []
            last = body[-1] if body else None
            shown = isinstance(last, ast.Expr) and not cell.source.rstrip().endswith(";")
            writes = shown and isinstance(last.value, ast.Call) and getattr(last.value.func, "id", "") in (
                "save_figure", "write_table", "atomic_write")
            assert not writes, f"{path.name} cell {i} displays a result path"


def test_paths_follow_the_project_root_not_the_working_directory(tmp_path):
    """A copy of the package in tmp/proj, run from tmp/elsewhere: results land in tmp/proj."""
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    shutil.copytree(ROOT / "llcpkg", proj / "llcpkg", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", proj)
    elsewhere.mkdir()
    nb = _write_nb(tmp_path / "01_exp.ipynb", [("params", "x = 1"), WRITE_X])
    env = {k: v for k, v in os.environ.items() if k not in ("LLC_ROOT", "LLC_RESULTS", "LLC_CACHE")}
    env.update(PYTHONPATH=str(proj), LLC_PROFILE="smoke")
    out = subprocess.run([sys.executable, "-m", "llcpkg.reproduce", str(nb)], env=env, cwd=elsewhere,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert (proj / ".cache" / "smoke-results" / "tables" / "t.csv").exists()
    assert not list(elsewhere.iterdir())


def test_an_installed_copy_outside_a_checkout_needs_llc_root(tmp_path, monkeypatch):
    from llcpkg import results

    monkeypatch.delenv("LLC_ROOT", raising=False)
    monkeypatch.setattr(results, "_CHECKOUT", tmp_path)  # site-packages: no pyproject.toml beside llcpkg/
    with pytest.raises(RuntimeError, match="set LLC_ROOT"):
        results.project_root()
    monkeypatch.setenv("LLC_ROOT", str(tmp_path / "here"))
    assert results.project_root() == (tmp_path / "here").resolve()
