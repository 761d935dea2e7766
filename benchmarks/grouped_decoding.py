"""Grouped bits vs independent bits: accuracy against lookups (issue #17, item 7).

On the frozen backbone of a (cached) LLC phase-1 model, trains two phase-2 heads with the
same optimiser settings (the profile's phase-2 config): the k independent bits of LLC
(``train.bit_loss`` on P F(x)) and k/2 four-class groups (``grouped.grouped_loss`` on a
``GroupedHead`` warm-started from phase 1's P, so both start from the same model). Only the
head trains, so this is a cheap proxy of a full phase 2. Each head is decoded by ED, ball
(radius 1..4) and MHD on its sign (or marginal) code, and by list decoding of its top-m
codes (the independent-bits head through ``GroupedHead.from_llc``, whose group softmax equals
its sigmoids). The cached full phase 2 (backbone trained too) is decoded the same way.

    OMP_NUM_THREADS=1 python benchmarks/grouped_decoding.py --data fashion_mnist --bits 8 --out grouped.csv
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from llcpkg.ablations import ball_table  # noqa: E402
from llcpkg.experiments import llc_outputs, load_bundle, run_llc, stage_configs  # noqa: E402
from llcpkg.grouped import GroupedHead, grouped_curve, grouped_loss  # noqa: E402
from llcpkg.models import Classifier  # noqa: E402
from llcpkg.profiles import get_profile  # noqa: E402
from llcpkg.train import bit_loss, fit, predict, set_seed  # noqa: E402


def on_features(head: nn.Module, loss, feats: torch.Tensor, labels: torch.Tensor, cfg) -> nn.Module:
    """Train ``head`` alone on fixed features (N, d) with ``loss(model, x, y, cfg)``; returns it."""
    set_seed(cfg.seed)
    model = Classifier(nn.Identity(), head)
    fit(model, TensorDataset(feats, labels), loss, cfg, desc="head", progress=False)
    return head


@torch.no_grad()
def decoder_rows(setting: str, head: nn.Module, feats: torch.Tensor, labels, max_m: int) -> pd.DataFrame:
    """ball_table (ED, ball, MHD on the signs of ``bit_logits``) + grouped_curve (list decoding)."""
    grouped = head if isinstance(head, GroupedHead) else GroupedHead.from_llc(head)
    bits = (head.class_codes() > 0).to(torch.uint8).numpy()
    out = {"bit_logits": head.bit_logits(feats).numpy(), "class_bits": bits, "labels": labels}
    sizes = [2 ** i for i in range(max_m.bit_length()) if 2 ** i <= min(max_m, 2 ** bits.shape[1])]
    df = pd.concat([ball_table(out), grouped_curve(grouped.group_logits(feats), bits, labels, sizes)],
                   ignore_index=True)
    df.insert(0, "setting", setting)
    return df


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion_mnist")
    p.add_argument("--bits", type=int, default=8)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-m", type=int, default=256, help="largest list size m (powers of 2 up to it)")
    p.add_argument("--out", type=Path, default=None, help="CSV file for the table")
    a = p.parse_args(argv)
    P = get_profile(a.profile)
    data = load_bundle(a.data, P, seed=a.seed)
    run = run_llc(data, P, a.bits, a.seed)  # cached stages load instead of training
    cfg = replace(stage_configs(P, len(data.train), a.seed)["phase2"], channels_last=False, device="cpu")
    tr, te = predict(run.phase1.model, data.train), predict(run.phase1.model, data.test)
    ftr, fte = torch.as_tensor(tr["features"]), torch.as_tensor(te["features"])
    ytr, yte = torch.as_tensor(tr["labels"]).long(), te["labels"]
    bits_head = copy.deepcopy(run.phase1.model.head).cpu()
    bits_head.codebook.requires_grad_(False)
    grouped_head = GroupedHead.from_llc(run.phase1.model.head.cpu())
    p2 = llc_outputs(run.phase2, data)
    rows = [
        decoder_rows("phase 1 head (no phase 2)", run.phase1.model.head, fte, yte, a.max_m),
        decoder_rows("bits, frozen features", on_features(bits_head, bit_loss, ftr, ytr, cfg), fte, yte, a.max_m),
        decoder_rows("grouped, frozen features", on_features(grouped_head, grouped_loss, ftr, ytr, cfg), fte, yte,
                     a.max_m),
        decoder_rows("bits, full phase 2 (cached)", run.phase2.model.head, torch.as_tensor(p2["features"]),
                     p2["labels"], a.max_m),
    ]
    df = pd.concat(rows, ignore_index=True)
    df.insert(1, "data", a.data)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(df.drop(columns=["data", "classes"]).to_string(index=False, float_format="%.4f"))
    if a.out is not None:
        df.to_csv(a.out, index=False)
    return df


if __name__ == "__main__":
    main()
