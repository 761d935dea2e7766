"""Deep supervised hashing baselines as heads on the LLC backbone: HashNet and GreedyHash.

Both map backbone features F(x) (B, d) through a projector to k real outputs z (B, k)
(``bit_logits``, as ``LLCHead``); the retrieval code is B(z), bit 1 where z >= 0
(``llcpkg.decode.signs_to_bits``). Each head comes with a loss ``loss(model, x, y, cfg)``
for ``llcpkg.train.run_stage``, so they train in the shared loop (same optimiser, same
backbone warm-started from the real-valued baseline, same caching as LLC).

* **HashNet** (Cao et al., ICCV 2017, eqs. 4-6): relaxed codes h = tanh(β z); weighted
  pairwise cross-entropy over the batch's pairs i != j,
  w_ij · [log(1 + exp(α <h_i, h_j>)) - s_ij α <h_i, h_j>],  s_ij = [y_i == y_j],
  with w = |pairs| / |similar pairs| for s = 1 and |pairs| / |dissimilar pairs| for s = 0,
  α = 10 / k (the reference ``sigmoid_param``). Continuation: β = (1 + γ t)^0.5 after t
  training steps (the reference updates β every 200 steps with γ = 0.005 over 10,000
  iterations); here γ is set so that β reaches ``beta_final`` at the last step of the run,
  and t is a buffer on the head incremented by every training-mode forward, so the shared
  loop needs no change and a cached or resumed model carries its β. log(1 + exp(·)) is
  computed as softplus (the reference's threshold at 15 only avoids overflow).
* **GreedyHash** (Su et al., NeurIPS 2018, supervised setting): b = sign(z) in the forward
  pass with the gradient passed straight through (``llcpkg.models.sign_ste``), logits = W b
  (a bias-free linear classifier on the codes), loss = CE(W b, y) + ``penalty`` ·
  mean(| |z| - 1 |^3) (the reference ``imagenet.py``: penalty 1, cubic).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import DataBundle
from .models import Classifier, GreedyHashHead, HashNetHead, build_head as build_model_head, sign_ste
from .train import TrainConfig, Trained, data_id, check_labels, run_stage, set_seed, stage_key

__all__ = ["hashnet_loss", "greedyhash_loss", "HashingConfig", "HASHERS",
           "build_head", "train_hashing"]


# ----------------------------------------------------------------------------- losses
def hashnet_loss(model: Classifier, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """HashNet's weighted pairwise cross-entropy over the batch's ordered pairs i != j."""
    head: HashNetHead = model.head
    h = model(x)  # (B, k) = tanh(β z)
    ip = head.alpha * (h @ h.t())  # (B, B)
    sim = (y[:, None] == y[None, :]).to(h.dtype)
    off = ~torch.eye(len(y), dtype=torch.bool, device=h.device)
    n_pairs = off.sum()
    n_sim = (sim.bool() & off).sum()
    n_dis = n_pairs - n_sim
    w = torch.where(sim.bool(), n_pairs / n_sim.clamp(min=1), n_pairs / n_dis.clamp(min=1))
    pair_loss = F.softplus(ip) - sim * ip
    return (w * pair_loss)[off].sum() / n_pairs.clamp(min=1)


def greedyhash_loss(model: Classifier, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """GreedyHash: CE of W sign(z) (label smoothing from ``cfg``) + penalty · mean | |z| - 1 |³."""
    head: GreedyHashHead = model.head
    z = head.bit_logits(model.features(x))  # (B, k)
    logits = head.classifier(sign_ste(z))  # (B, L)
    check_labels(y, logits.shape[1])
    cubic = (z.abs() - 1).abs().pow(3).mean()
    return F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing) + head.penalty * cubic


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class HashingConfig:
    """A hashing head's settings (the reference values by default)."""

    method: str  # a name in HASHERS: hashnet | greedyhash
    bits: int  # k, the code length
    beta_final: float = 10.0  # HashNet: β at the last training step (continuation target)
    alpha: float | None = None  # HashNet: scale of <h_i, h_j> in the sigmoid; None = 10 / k (reference)
    penalty: float = 1.0  # GreedyHash: weight of the cubic penalty pulling z towards sign(z)


HASHERS: dict[str, Callable] = {"hashnet": hashnet_loss, "greedyhash": greedyhash_loss}


def build_head(cfg: HashingConfig, dim: int, num_classes: int, total_steps: int = 1) -> nn.Module:
    """The head for ``cfg`` on d-dim features; HashNet's γ makes β reach ``beta_final`` after
    ``total_steps`` training steps (β = (1 + γ t)^0.5)."""
    if cfg.method not in HASHERS:
        raise ValueError(f"unknown hashing method {cfg.method!r}; choose one of {sorted(HASHERS)}")
    kw = ({"gamma": (cfg.beta_final ** 2 - 1.0) / max(total_steps, 1), "power": 0.5, "alpha": cfg.alpha}
          if cfg.method == "hashnet" else {"penalty": cfg.penalty})
    return build_model_head(cfg.method, dim, num_classes, cfg.bits, **kw)


def train_hashing(data: DataBundle, cfg: HashingConfig, train_cfg: TrainConfig, warm_start: Trained,
                  cache_dir: Path | str | None = None, stop_after: int | None = None) -> Trained:
    """Train a hashing head and the backbone, warm-started from ``warm_start``'s backbone
    (the cached real-valued baseline), in the shared loop; cached like the LLC stages."""
    key = stage_key(stage=cfg.method, data=data_id(data), hashing=cfg, train=train_cfg, parent=warm_start.key)
    set_seed(train_cfg.seed)
    backbone = copy.deepcopy(warm_start.model.backbone)
    steps = train_cfg.epochs * -(-len(data.train) // train_cfg.batch_size)
    head = build_head(cfg, backbone.out_dim, data.num_classes, total_steps=steps)
    return run_stage(cfg.method, key, Classifier(backbone, head), data.train, HASHERS[cfg.method], train_cfg,
                     cache_dir, stop_after)
