"""Run notebooks in order with papermill: ``python -m llcpkg.reproduce notebooks/*.ipynb``.

Extra papermill parameters are given as ``--papermill-args "-p bits 16 -p seed 1"``; values are
Python literals, so a list is ``-p datasets "['fashion_mnist']"``. Every parameter is checked
against the notebook's ``parameters`` cell before anything runs (:mod:`llcpkg.parameters`): an
unknown name or a value of the wrong type exits with status 2.

``<results>`` is the profile's results folder; a notebook run with parameters that differ from
its defaults writes to ``<results>/runs/<notebook>__<name>=<value>.../`` instead, unless
``--into-results`` is given, so committed results are never overwritten by accident. The
kernel gets ``$LLC_RESULTS`` (that folder) and ``$LLC_STAGING``: its tables and figures are
staged and moved into place only when the whole notebook succeeds. The executed notebook goes
to ``<results>/executed/<name>.ipynb`` (a temporary file renamed on success), with its
provenance (:mod:`llcpkg.provenance`) in its metadata and in ``<results>/provenance.json``,
and papermill's paths relative to the project root. A failing notebook leaves the earlier
results untouched and the command exits non-zero naming it. Trained models are cached by the
library, so a rerun after an interruption skips the finished stages.
"""
from __future__ import annotations

import argparse
import ast
import logging
import os
import shlex
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import runtimes
from .parameters import check_parameters, custom_parameters, read_parameters, run_name
from .profiles import Profile, get_profile
from .provenance import git_state, notebook_entry, record, update_provenance
from .seeds import resolve_seeds
from .results import atomic_write, project_root, promote, relative_to_root

__all__ = ["parse_params", "run_notebook", "strip_widget_state", "stamp_notebook", "absolute_path_cells",
           "Job", "plan", "run_job", "main"]


def parse_params(args: str) -> dict:
    """Parse papermill-style ``-p name value`` pairs; values are Python literals when they parse."""
    tokens, params = shlex.split(args or ""), {}
    i = 0
    while i < len(tokens):
        if tokens[i] not in ("-p", "--parameters") or i + 2 >= len(tokens):
            raise ValueError(f"expected '-p NAME VALUE' pairs, got {args!r}")
        name, raw = tokens[i + 1], tokens[i + 2]
        try:
            params[name] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[name] = raw
        i += 3
    return params


def strip_widget_state(path: Path) -> None:
    """Drop progress-bar widgets: their saved state (megabytes of metadata, no results) and
    their views (noise outside a live kernel); see :func:`llcpkg.report.drop_widgets`."""
    import nbformat

    from .report import drop_widgets

    nb = nbformat.read(str(path), as_version=4)
    if drop_widgets(nb):
        nbformat.write(nb, str(path))


def run_notebook(nb: Path, out_dir: Path, params: dict, cwd: Path) -> Path:
    """Execute ``nb`` with papermill (kernel python3) into ``out_dir``; return the output path."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / nb.name
    tmp = out_dir / f".tmp-{nb.name}"
    try:
        pm.execute_notebook(str(nb), str(tmp), parameters=params, kernel_name="python3", cwd=str(cwd),
                            progress_bar=False)
        strip_widget_state(tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def stamp_notebook(path: Path, source: Path, provenance: dict) -> None:
    """Store ``provenance`` in the executed notebook's metadata and make papermill's input and
    output paths relative to the project root."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.setdefault("papermill", {})
    meta["input_path"], meta["output_path"] = relative_to_root(source), relative_to_root(path)
    nb.metadata["provenance"] = provenance
    atomic_write(path, lambda p: nbformat.write(nb, str(p)))


def absolute_path_cells(path: Path, needles: list[str]) -> list[int]:
    """Indices of the cells whose outputs contain any of ``needles`` (absolute paths)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells)
            if any(n in str(o) for o in c.get("outputs", []) for n in needles)]


def _not_papermill_parameter_warning(record: logging.LogRecord) -> bool:
    """False for papermill's own parameter warnings: its parser misses valid lines (an apostrophe in
    a comment, ``a, b = 1, 2``) and then calls real parameters unknown; :func:`plan` checks them."""
    return not record.getMessage().startswith(("Passed unknown parameter", "Unable to parse line"))


@contextmanager
def _environ(**values: str):
    """Set environment variables (which the kernel inherits) for the duration of the block."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class Job:
    """One notebook to run: its parameters (as papermill injects them), defaults and results folder."""

    nb: Path
    params: dict
    defaults: dict
    results_dir: Path


def plan(nb: Path, params: dict, profile: Profile, into_results: bool = False) -> Job:
    """Check ``params`` against ``nb``'s parameters cell and choose its results folder:
    ``<results>/runs/<name>`` when they differ from the defaults, unless ``into_results``."""
    if not nb.exists():
        raise FileNotFoundError(f"no notebook {nb}")
    defaults = read_parameters(nb)
    params = {**params, **({"profile": profile.name} if "profile" in defaults else {})}
    check_parameters(params, defaults, nb.name)
    custom = custom_parameters(params, defaults)
    out = profile.results_dir if into_results or not custom else profile.results_dir / "runs" / run_name(nb.stem, custom)
    return Job(nb, params, defaults, out.resolve())


def _write_run_times(job: Job, log: Path, wall: float) -> None:
    """Merge the kernel's stage times (``log``) and the notebook's wall time into ``run_times.csv``."""
    runtimes.clear()
    runtimes.load_log(log)
    runtimes.record(job.nb.stem, "notebook (total)", wall, cached=False)
    runtimes.write_run_times(job.results_dir)
    runtimes.clear()
    log.unlink(missing_ok=True)


def run_job(job: Job, profile: Profile) -> Path:
    """Execute ``job`` with staged results; on success promote them, stamp the executed notebook
    and update ``provenance.json``; on failure delete what was staged. Return the executed notebook."""
    stage = job.results_dir / f".tmp-staging-{job.nb.stem}"
    shutil.rmtree(stage, ignore_errors=True)  # left behind by a killed run
    code_state = git_state(project_root())  # before the run: 99_summary itself rewrites README.md
    log = job.results_dir / f".tmp-run-times-{job.nb.stem}.jsonl"
    log.unlink(missing_ok=True)
    t0 = time.time()
    try:
        with _environ(LLC_RESULTS=str(job.results_dir), LLC_STAGING=str(stage), LLC_NOTEBOOK=job.nb.stem,
                      **{runtimes.LOG_ENV: str(log)}):
            out = run_notebook(job.nb, job.results_dir / "executed", job.params, cwd=job.nb.resolve().parent)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        log.unlink(missing_ok=True)
        raise
    wall = time.time() - t0
    promote(stage, job.results_dir)
    _write_run_times(job, log, wall)
    params = {**job.defaults, **job.params}
    if "seeds" in params and params["seeds"] is None:  # the profile's (or $LLC_SEEDS): record which
        params["seeds"] = list(resolve_seeds(profile))
    rec = record(project_root(), profile.name, profile.device, {job.nb.stem: notebook_entry(params, wall)},
                 git=code_state)
    stamp_notebook(out, job.nb, rec)
    update_provenance(job.results_dir / "provenance.json", rec)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--papermill-args", default="", help="e.g. \"-p bits 16 -p datasets \\\"['omniglot']\\\"\"")
    ap.add_argument("--into-results", action="store_true",
                    help="write custom-parameter runs into the results folder itself, not results/runs/<name>")
    args = ap.parse_args(argv)
    try:
        params = parse_params(args.papermill_args)
        profile = get_profile(params.pop("profile", None))
        jobs = [plan(nb, params, profile, args.into_results) for nb in args.notebooks]
    except (ValueError, FileNotFoundError) as e:  # ParameterError is a ValueError
        print(f"reproduce: {e}", file=sys.stderr)
        return 2
    logging.getLogger("papermill").addFilter(_not_papermill_parameter_warning)  # added once (no duplicates)
    needles = [str(project_root()), *([str(Path.home())] if str(Path.home()) != "/" else [])]
    for job in jobs:
        t0 = time.time()
        print(f"reproduce: {job.nb.name} (profile {profile.name}) -> {relative_to_root(job.results_dir)} ...", flush=True)
        try:
            out = run_job(job, profile)
        except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
            print(f"reproduce: FAILED in {job.nb.name}: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr)
            return 1
        if cells := absolute_path_cells(out, needles):
            print(f"reproduce: warning: {job.nb.name} cells {cells} print an absolute path; print "
                  "llcpkg.results.relative_to_root(path) or end the cell with ';'", file=sys.stderr)
        print(f"reproduce: {job.nb.name} done in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
