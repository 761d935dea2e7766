"""Where a result came from: code version, machine, libraries and parameters.

``llcpkg.reproduce`` writes one record per results folder, ``<results>/provenance.json``, and
the same record (with only that notebook) into each executed notebook's metadata under
``"provenance"``. Numbers move across machines (another CPU moved Fashion-MNIST phase-1 MHD at
k = 4 by 6.8 points), so every table is read together with this record. Schema::

    {"commit": str, "dirty": bool, "profile": str, "created": ISO-8601 str,
     "environment": {"python": str, "torch": str, "numpy": str, "blas": str, "cpu": str,
                     "threads": int, "device": str},
     "notebooks": {"<notebook stem>": {"parameters": {...}, "seeds": [int, ...] or null,
                                       "wall_s": float, "finished": ISO-8601 str}}}

The top-level fields describe the latest write (``created`` is its time); rerunning one
notebook replaces its entry and keeps the others. ``dirty`` means tracked files outside
``results/`` differ from the commit (like ``git describe --dirty``); outside a git checkout the
commit is ``"unknown"`` and ``dirty`` is true.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["now", "git_state", "blas_summary", "cpu_model", "environment", "notebook_entry", "record",
           "update_provenance"]


def now() -> str:
    """The current UTC time, ISO-8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state(root: Path) -> tuple[str, bool]:
    """(commit sha, dirty) of the checkout at ``root``; ``("unknown", True)`` without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results").strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return commit, dirty


def blas_summary() -> str:
    """One line on the linear-algebra builds: torch's BLAS, oneDNN and CPU kernels; numpy's BLAS."""
    import torch
    from threadpoolctl import threadpool_info

    show = torch.__config__.show()
    found = {key: m.group(1) for key, pat in [("MKL", r"Math Kernel Library Version ([\d.]+)"),
                                              ("oneDNN", r"MKL-DNN (v\S+)"), ("BLAS", r"BLAS_INFO=(\w+)"),
                                              ("CPU", r"CPU capability usage: (\S+)")]
             if (m := re.search(pat, show))}
    torch_part = ", ".join(f"{k} {v}" for k, v in found.items()) or "unknown build"
    numpy_part = "; ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture', '?')}, {i['num_threads']} threads)"
                           for i in threadpool_info() if i["user_api"] == "blas") or "no BLAS loaded"
    return f"torch: {torch_part}; numpy: {numpy_part}"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform``) and the logical CPUs visible."""
    name = ""
    try:
        name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def environment(device: str) -> dict:
    """The ``environment`` record: versions, BLAS build, CPU, torch's thread count and ``device``."""
    import numpy as np
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "blas": blas_summary(), "cpu": cpu_model(), "threads": torch.get_num_threads(), "device": device}


def notebook_entry(parameters: dict, wall_s: float) -> dict:
    """One notebook's record; ``seeds`` from its ``seed`` (an int) or ``seeds`` (a list) parameter."""
    seed, seeds = parameters.get("seed"), parameters.get("seeds")
    seeds = [seed] if isinstance(seed, int) else list(seeds) if isinstance(seeds, (list, tuple)) else None
    params = json.loads(json.dumps(parameters, default=repr))  # tuples become lists, anything odd its repr
    return {"parameters": params, "seeds": seeds, "wall_s": round(float(wall_s), 3), "finished": now()}


def record(root: Path, profile: str, device: str, notebooks: dict[str, dict],
           git: tuple[str, bool] | None = None) -> dict:
    """A whole provenance record for ``notebooks`` (``{stem: notebook_entry(...)}``).

    ``git``: the (commit, dirty) state to record, taken before the notebooks ran (a notebook
    may itself rewrite a tracked file, as 99 rewrites README's scoreboard); default: now."""
    commit, dirty = git if git is not None else git_state(root)
    return {"commit": commit, "dirty": dirty, "profile": profile, "created": now(),
            "environment": environment(device), "notebooks": notebooks}


def update_provenance(path: Path, rec: dict) -> dict:
    """Merge ``rec`` into the JSON file at ``path`` (its notebooks replace theirs, the others stay)
    and write it atomically; an unreadable old file is replaced. Return what was written."""
    from .results import atomic_write

    old: dict = {}
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        pass
    if not isinstance(old, dict):
        old = {}
    merged = {**rec, "notebooks": {**(old.get("notebooks") or {}), **rec["notebooks"]}}
    atomic_write(path, lambda p: p.write_text(json.dumps(merged, indent=1) + "\n"))
    return merged
