"""Evaluation of trained classifiers: a model's outputs on a split, and the accuracy of every
decoder that applies to them (the paper's Table 1 columns).

Decoders are picked by name from :data:`llcpkg.decode.DECODERS` (``decode.decode``), with the
tie policies stated in :mod:`llcpkg.decode`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import decode
from .codebooks import codebook_stats
from .data import DataBundle, check_labels
from .train import Trained, iterate_batches, predict

__all__ = ["llc_outputs", "classification_metrics", "accuracy"]


def llc_outputs(trained: Trained, data: DataBundle, split: str = "test", device: str = "cpu") -> dict[str, np.ndarray]:
    """Predictions of a trained model on a split, plus the class codes (L, k) in {0, 1} for LLC heads."""
    out = predict(trained.model, getattr(data, split), device=device)
    head = trained.model.head
    if hasattr(head, "class_codes"):
        out["class_bits"] = (head.class_codes().cpu().numpy() > 0).astype(np.uint8)
    return out


def classification_metrics(out: dict[str, np.ndarray], tie: str = "lowest") -> dict[str, float]:
    """Accuracy of every decoder that applies to a model's outputs.

    Linear head: ``accuracy`` (argmax). LLC head: ``mips`` (argmax of B(C)·P F(x)), ``mhd``
    (ties broken by ``tie``), ``mhd_score`` (ties broken by the bits' real-valued scores),
    ``ed`` (unassigned count as errors), ``unassigned``, ``mhd_tie_rate`` (share of
    queries with more than one nearest class code) and ``distinct_codes``. Labels outside
    [0, L) raise ValueError before anything is computed.
    """
    y = out["labels"]
    check_labels(y, len(out["class_bits"]) if "class_bits" in out else out["outputs"].shape[1], "evaluation labels")
    if "class_bits" not in out:
        return {"accuracy": float((out["outputs"].argmax(1) == y).mean())}
    codes, z = out["class_bits"], out["bit_logits"]
    pred = {name: decode.decode(name, z, codes, **kw)
            for name, kw in (("mips", {}), ("mhd", {"tie": tie}), ("mhd_score", {}), ("ed", {}))}
    n_tied = decode.mhd_decode(decode.signs_to_bits(z), codes, tie=tie).n_tied
    return {
        "mips": float((pred["mips"] == y).mean()),
        "mhd": float((pred["mhd"] == y).mean()),
        "mhd_score": float((pred["mhd_score"] == y).mean()),
        "ed": float((pred["ed"] == y).mean()),
        "unassigned": float((pred["ed"] < 0).mean()),
        "mhd_tie_rate": float((n_tied > 1).mean()),
        "distinct_codes": int(len(np.unique(codes, axis=0))),
        "min_code_distance": int(codebook_stats(codes)["min distance"]),
    }


@torch.no_grad()
def accuracy(model: nn.Module, ds, batch_size: int = 1024, device: str = "cpu") -> float:
    """Top-1 accuracy of a model whose forward returns logits, over a data set (the model is
    left on the device it came on)."""
    home = next(model.parameters()).device
    model.eval().to(device)
    hits = n = 0
    for x, y in iterate_batches(ds, batch_size, shuffle=False):
        hits += int((model(x.to(device)).argmax(1).cpu() == y).sum())
        n += len(y)
    model.to(home)
    return hits / max(n, 1)
