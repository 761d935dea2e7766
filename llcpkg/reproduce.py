"""Run notebooks in order with papermill: ``python -m llcpkg.reproduce notebooks/*.ipynb``.

Each notebook is executed into ``<results>/executed/<name>.ipynb`` (written to a temporary
file first, renamed on success). A failing notebook leaves the earlier results untouched
and the command exits non-zero naming it. Trained models are cached by the library, so
a rerun after an interruption skips the finished stages. Extra papermill parameters are
given as ``--papermill-args "-p bits 16 -p seed 1"``.
"""
from __future__ import annotations

import argparse
import ast
import os
import shlex
import sys
import time
from pathlib import Path

from .profiles import get_profile

__all__ = ["parse_params", "run_notebook", "strip_widget_state", "main"]


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--papermill-args", default="", help="e.g. \"-p bits 16\"")
    args = ap.parse_args(argv)
    params = parse_params(args.papermill_args)
    profile = get_profile(params.get("profile"))
    params.setdefault("profile", profile.name)
    out_dir = profile.results_dir / "executed"
    for nb in args.notebooks:
        if not nb.exists():
            print(f"reproduce: no notebook {nb}", file=sys.stderr)
            return 2
        t0 = time.time()
        print(f"reproduce: {nb.name} (profile {profile.name}) ...", flush=True)
        try:
            run_notebook(nb, out_dir, params, cwd=nb.resolve().parent)
        except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
            print(f"reproduce: FAILED in {nb.name}: {type(e).__name__}: {str(e)[-2000:]}", file=sys.stderr)
            return 1
        print(f"reproduce: {nb.name} done in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
