"""Train one stage on N processes: ``torchrun --nproc_per_node=N -m llcpkg.distributed ...``.

Example (8 GPUs, the official ResNet-50 recipe; see the README, "Training at scale")::

    torchrun --standalone --nproc_per_node=8 -m llcpkg.distributed \\
        --data imagefolder --root /data/imagenet --backbone resnet50 --bits 20 --stage phase1

Stages: ``baseline``; ``phase1`` (after the baseline, warm-started from its backbone);
``phase2`` (after both); ``compressed`` (a SmallCNN compressed by ``--method`` at 1/``--factor``
of its weights, :func:`llcpkg.compress.train_compressed`) and ``compressed-llc`` (LLC on that
backbone, :func:`llcpkg.compress.compressed_backbone` under :func:`llcpkg.pipeline.run_llc`). Each stage is cached exactly as in
the notebooks (same configs from :func:`llcpkg.pipeline.stage_configs`, same keys), so an
interrupted job resumes from its last finished epoch when relaunched with the same arguments.

Batch and learning rate: ``--batch-size`` is per rank (default: the profile's batch / N), the
global batch is per-rank × N, and the rates follow the linear scaling rule of the profile
(imagenet: lr = 0.1 × global batch / 256, phase 2: 0.01 × global batch / 256).
Without torchrun the same command trains in one process.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import torch

from . import parallel
from .compress import METHODS, CompressionConfig, NetSpec, compressed_backbone, train_compressed
from .data import DATASETS, DataBundle, load_dataset
from .codebooks import code_length
from .pipeline import run_llc, stage_configs
from .profiles import PROFILES, Profile, get_profile
from .train import TrainConfig, Trained

__all__ = ["STAGES", "parse_args", "check_device", "configs_for", "train_stage", "main"]

STAGES = ("baseline", "phase1", "phase2", "compressed", "compressed-llc")
CONFIG_OF = {"baseline": "baseline", "phase1": "phase1", "phase2": "phase2", "compressed": "baseline",
             "compressed-llc": "phase2"}  # the stage config each stage trains with
IMAGE_SETS = ("imagefolder", "cifar10", "cifar100")  # the loaders that take ``augment``


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; profile values are the defaults of every setting left out."""
    p = argparse.ArgumentParser(prog="python -m llcpkg.distributed", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="imagefolder", choices=sorted(DATASETS), help="data set (default imagefolder)")
    p.add_argument("--root", help="data folder (imagefolder: holds train/<class>/ and val/<class>/)")
    p.add_argument("--stage", default="phase1", choices=STAGES)
    p.add_argument("--profile", default="imagenet", choices=sorted(PROFILES), help="recipe (default imagenet)")
    p.add_argument("--backbone", help="smallcnn | resnet18 | resnet50 (default: the profile's)")
    p.add_argument("--width", type=int, help="SmallCNN width (default: the profile's)")
    p.add_argument("--bits", type=int, help="k (default 2·ceil(log2 L), 20 for 1000 classes)")
    p.add_argument("--epochs", type=int, help="epochs of every stage trained (default: the profile's)")
    p.add_argument("--batch-size", type=int, help="per-rank batch (default: the profile's batch / world size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu | cuda (default: the profile's)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast dtype (CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC layout (default: the profile's)")
    p.add_argument("--size", type=int, default=224, help="image side for imagefolder (default 224)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no random crops or flips (small images, e.g. digits)")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers per rank (image folders)")
    p.add_argument("--method", default="hfh", choices=METHODS, help="compression (compressed stages)")
    p.add_argument("--factor", type=float, default=8.0, help="compressed stages keep 1/factor of the weights")
    p.add_argument("--cache", help="checkpoint folder (default $LLC_CACHE or .cache/checkpoints)")
    p.add_argument("--stop-after", type=int, help="stop each LLC stage after this many epochs (as if killed; for tests)")
    args = p.parse_args(argv)
    if args.data == "imagefolder" and not args.root:
        p.error("--root is required with --data imagefolder: a folder holding train/<class>/ and val/<class>/")
    if args.factor < 1:
        p.error(f"--factor must be at least 1 (keep 1/factor of the weights); got {args.factor}")
    return args


def check_device(device: str) -> None:
    """Fail early and clearly when CUDA is asked for on a machine without it."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {device} was requested but CUDA is not available on this machine "
                         "(torch.cuda.is_available() is False); pass --device cpu")


def _profile(args: argparse.Namespace) -> Profile:
    overrides = {k: v for k, v in {"backbone": args.backbone, "width": args.width, "device": args.device,
                                   "channels_last": args.channels_last}.items() if v is not None}
    return get_profile(args.profile, **overrides)


def configs_for(args: argparse.Namespace, profile: Profile, n_train: int, world: int) -> dict[str, TrainConfig]:
    """The notebooks' stage configs for a global batch of per-rank batch × world (rates scaled
    by the profile's rule), with the command line's epochs and precision."""
    per_rank = args.batch_size or max(1, profile.batch_size // world)
    cfgs = stage_configs(replace(profile, batch_size=per_rank * world), n_train, args.seed)
    extra = {"precision": args.precision, **({"epochs": args.epochs} if args.epochs else {})}
    return {stage: replace(c, **extra) for stage, c in cfgs.items()}


def _load(args: argparse.Namespace) -> DataBundle:
    kw = {"augment": args.augment} if args.data in IMAGE_SETS else {}
    if args.data == "imagefolder":
        kw["size"] = args.size
    return load_dataset(args.data, root=args.root, **kw)


def train_stage(args: argparse.Namespace, data: DataBundle, profile: Profile, cfgs: dict[str, TrainConfig],
                cache: str) -> Trained:
    """Train (or load) ``args.stage`` and the stages it starts from; every stage is cached."""
    bits = code_length(data.num_classes, args.bits)
    base = hook = None
    if args.stage.startswith("compressed"):
        net = NetSpec(f"cnn-w{profile.width}", kind="cnn", width=profile.width)
        comp = CompressionConfig(args.method, factor=1 / args.factor)
        base = train_compressed(data, net, comp, cfgs["baseline"], cache)
        if args.stage == "compressed":
            return base
        hook = compressed_backbone(net, comp, data)
    until = args.stage if args.stage in ("baseline", "phase1") else "phase2"
    run = run_llc(data, profile, bits, args.seed, configs=cfgs, baseline=base, backbone=hook, until=until,
                  cache_dir=cache, stop_after=args.stop_after)
    return getattr(run, until)


def main(argv: list[str] | None = None) -> int:
    """Parse, join the process group (if launched by torchrun), train, and report on rank 0."""
    args = parse_args(argv)
    profile = _profile(args)
    check_device(profile.device)
    ctx = parallel.init(profile.device, workers=args.workers, pin_memory=torch.device(profile.device).type == "cuda")
    world = ctx.world if ctx else 1
    try:
        data = _load(args)
        if world > len(data.train):
            raise SystemExit(f"world size {world} is larger than the {len(data.train)} training images of "
                             f"{data.name}: launch at most {len(data.train)} processes")
        cfgs = configs_for(args, profile, len(data.train), world)
        cache = args.cache or str(profile.cache_dir)
        trained = train_stage(args, data, profile, cfgs, cache)
        if parallel.is_writer():
            cfg = cfgs[CONFIG_OF[args.stage]]
            print(json.dumps({"stage": args.stage, "key": trained.key, "cache": cache, "world": world,
                              "global_batch": cfg.batch_size, "lr": cfg.lr, "epochs": cfg.epochs}))
    finally:
        parallel.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
