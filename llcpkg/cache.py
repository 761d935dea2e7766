"""The checkpoint cache: one version, stable keys, and files that are verified before use.

A trained stage is stored as ``{cache_dir}/{stage}-{key}.pt`` (``torch.save`` of the state)
plus a manifest ``{stage}-{key}.pt.json`` holding the file's sha256 and size. Loading
re-hashes the file and compares: a mismatch, a missing manifest, a truncated, zero-byte or
unreadable file is moved aside as ``*.corrupt`` (the manifest is dropped) with a warning,
and the caller retrains the stage. Partial (per-epoch) checkpoints ``*.partial.pt`` follow
the same rule. Both files are written to a temporary name and renamed, the checkpoint
first, so an interrupted write leaves at worst a checkpoint without a manifest, which is
treated as damaged and retrained, never read.

Checkpoints written before manifests existed (a bare ``.pt``) are not trusted: they are
moved aside and retrained, since nothing can tell an intact one from a damaged one.

``stage_key`` hashes everything that shapes a stage's result together with
``CACHE_VERSION``; bump the version when a code change makes old checkpoints wrong.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .results import atomic_write

__all__ = ["CACHE_VERSION", "stage_key", "checkpoint_path", "partial_path", "manifest_path", "save_checkpoint",
           "load_checkpoint", "discard", "quarantine", "is_cached", "file_sha256"]

CACHE_VERSION = 1  # bump when a change to the code makes old checkpoints wrong


def stage_key(**parts) -> str:
    """A short stable hash of the parts (dataclasses, numbers, strings, arrays) and CACHE_VERSION."""
    def norm(v):
        if hasattr(v, "__dataclass_fields__"):
            return _key_fields(v)
        if isinstance(v, (np.ndarray, torch.Tensor)):
            return hashlib.sha1(np.ascontiguousarray(np.asarray(v, dtype=np.float32)).tobytes()).hexdigest()
        return v

    parts = {**parts, "cache_version": CACHE_VERSION}
    blob = json.dumps({k: norm(v) for k, v in parts.items()}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _key_fields(v) -> dict:
    """``asdict(v)`` less the fields marked ``key="unless-default"`` that hold their default,
    so that adding such a field leaves every earlier cache key as it was."""
    d = asdict(v)
    for f in fields(v):
        if f.metadata.get("key") == "unless-default" and d[f.name] == f.default:
            del d[f.name]
    return d


# ----------------------------------------------------------------------------- paths
def checkpoint_path(cache_dir: Path | str, stage: str, key: str) -> Path:
    """Where stage ``stage`` with key ``key`` is cached: ``cache_dir/{stage}-{key}.pt``."""
    return Path(cache_dir) / f"{stage}-{key}.pt"


def partial_path(path: Path) -> Path:
    """The per-epoch checkpoint of an unfinished stage: ``{stage}-{key}.partial.pt``."""
    return path.with_name(path.name[:-len(".pt")] + ".partial.pt")


def manifest_path(path: Path) -> Path:
    """The sidecar holding a checkpoint's sha256 and size: ``{name}.json``."""
    return path.with_name(path.name + ".json")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- save / load
def save_checkpoint(path: Path, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically, then its manifest (sha256, bytes, version)."""
    atomic_write(path, lambda p: torch.save(obj, p))
    manifest = {"sha256": file_sha256(path), "bytes": path.stat().st_size, "cache_version": CACHE_VERSION}
    atomic_write(manifest_path(path), lambda p: p.write_text(json.dumps(manifest) + "\n"))
    return path


def discard(path: Path) -> None:
    """Remove a checkpoint and its manifest (missing files are fine)."""
    for p in (path, manifest_path(path)):
        p.unlink(missing_ok=True)


def quarantine(path: Path, reason: str) -> Path:
    """Move a damaged checkpoint aside as ``{name}.corrupt`` (dropping its manifest) and warn."""
    dest = path.with_name(path.name + ".corrupt")
    os.replace(path, dest)
    manifest_path(path).unlink(missing_ok=True)
    warnings.warn(f"checkpoint {path} is unusable ({reason}); moved to {dest.name}, the stage will be retrained",
                  RuntimeWarning, stacklevel=3)
    return dest


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be trusted, or None if its bytes match its manifest."""
    try:
        manifest = json.loads(manifest_path(path).read_text())
        expected, size = str(manifest["sha256"]), int(manifest["bytes"])
    except FileNotFoundError:
        return "no manifest: written by an older llcpkg or interrupted, so it cannot be verified"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable manifest: {e}"
    actual = path.stat().st_size
    if actual != size:
        return f"{actual} bytes, the manifest records {size} (truncated or overwritten)"
    if file_sha256(path) != expected:
        return "sha256 differs from the manifest (the file was altered)"
    return None


def load_checkpoint(path: Path | None, weights_only: bool = True, map_location=None) -> Any | None:
    """The object saved at ``path`` after checking it against its manifest, or None.

    None when there is no file, or when the file is damaged or unverifiable (then it is
    moved aside by :func:`quarantine`): either way the caller trains the stage.
    ``map_location`` as in :func:`torch.load`.
    """
    if path is None or not path.exists():
        return None
    try:
        reason = _problem(path)
        if reason is None:
            return torch.load(path, weights_only=weights_only, map_location=map_location)
    except Exception as e:  # noqa: BLE001 - any failure to read the bytes back means "retrain"
        reason = f"{type(e).__name__}: {e}"
    quarantine(path, reason)
    return None


def is_cached(path: Path) -> bool:
    """Whether ``path`` holds a checkpoint that matches its manifest (nothing is moved)."""
    return path.exists() and _problem(path) is None
