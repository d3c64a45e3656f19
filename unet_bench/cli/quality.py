"""`unet-bench quality NAME`: train a variant with several seeds and print Dice and IoU, mean ± std."""

from __future__ import annotations

import argparse
import json

from unet_bench.cli.common import add_variant_arguments, variant_config
from unet_bench.cli.execution import TRAINED, Execution, add_execution_arguments
from unet_bench.errors import BenchError
from unet_bench.models.config import MAX_SIZE
from unet_bench.quality.settings import (
    AUGMENTS,
    DEFAULT_AUGMENT,
    DEFAULT_BATCH,
    DEFAULT_LR,
    DEFAULT_LR_SCHEDULE,
    DEFAULT_OPTIMIZER,
    DEFAULT_STEPS,
    DEFAULT_TILE_OUT,
    INITS,
    LAYOUTS,
    OPTIMIZERS,
    SCHEDULES,
)
from unet_bench.record import DEFAULT_ELASTIC_SIGMA_PX, DEFAULT_SEEDS
from unet_bench.suite.checks import (
    BATCH,
    ELASTIC_SIGMA,
    LEARNING_RATE,
    SEEDS,
    SIZE,
    STEPS,
    TRAIN_IMAGES,
    as_argument,
    integer,
)


def cmd_quality(args: argparse.Namespace) -> int:
    from unet_bench.quality.evaluate import evaluate_quality
    from unet_bench.quality.folder import load_split

    if args.elastic_sigma is not None and args.augment != "elastic":
        raise BenchError(f"--elastic-sigma sets the elastic warp's strength; it needs --augment elastic "
                         f"(given: --augment {args.augment})")
    cfg = variant_config(args)
    execution = Execution.from_args(args)
    data = load_split(args.data, volumes=cfg.spatial_dims == 3, layout=args.layout) if args.data else None
    result = evaluate_quality(
        cfg, seeds=args.seeds, steps=args.steps, batch=args.batch, tile_out=args.tile_out,
        tile_in=args.tile_in, halo=args.halo, optimizer=args.optimizer, lr=args.lr,
        weight_map=not args.no_weight_map, init=args.init, augment=args.augment,
        elastic_sigma=args.elastic_sigma or DEFAULT_ELASTIC_SIGMA_PX, schedule=args.schedule,
        curve_every=args.curve_every, train_images=args.train_images, data=data, device=execution.device,
        threads=execution.threads,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    extra = result["extra"]
    name = args.name + (f"[{','.join(args.overrides)}]" if args.overrides else "")
    print(
        f"{name}: Dice {result['dice_mean']:.3f} ± {result['dice_std']:.3f}  "
        f"IoU {result['iou_mean']:.3f} ± {result['iou_std']:.3f}  "
        f"({result['quality_seeds']} seeds × {result['train_steps']} steps, "
        f"{result['train_time_s']:.1f} s per model; tiles {extra['tile_in']} -> {extra['tile_out']} px)"
    )
    print(f"  Dice per seed: {', '.join(f'{d:.3f}' for d in extra['dice_per_seed'])}")
    print(f"  objects: F1 at IoU>=0.5 {result['object_f1_mean']:.3f} ± {result['object_f1_std']:.3f}  "
          f"mAP 0.5:0.95 {result['map_mean']:.3f} ± {result['map_std']:.3f}  "
          f"adapted Rand error {result['rand_error_mean']:.3f} ± {result['rand_error_std']:.3f} (lower is better)")
    rule = extra["threshold_rule"]
    print(f"  baselines: all-foreground Dice {result['dice_all_foreground']:.3f}; tuned threshold (smoothing "
          f"{rule['sigma']:g} px, chosen on the training split) Dice {result['dice_threshold']:.3f}  "
          f"IoU {result['iou_threshold']:.3f}  object F1 {result['object_f1_threshold']:.3f}  "
          f"mAP {result['map_threshold']:.3f}  Rand error {result['rand_error_threshold']:.3f}")
    points = zip(result["curve_steps"], result["curve_dice_mean"], result["curve_object_f1_mean"], strict=True)
    curve = ", ".join(f"{step}: {d:.3f}/{f:.3f}" for step, d, f in points)
    print(f"  learning curve (steps: Dice/object F1, mean over seeds): {curve}")
    print(f"  network - threshold: Dice {result['dice_mean'] - result['dice_threshold']:+.3f}, "
          f"object F1 {result['object_f1_mean'] - result['object_f1_threshold']:+.3f}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quality", help="train a variant with several seeds; Dice and IoU on the validation split",
        description="Train NAME briefly with seeds 0..N-1 on the same data (the seeded synthetic cell task, "
        "or --data DIR) and report Dice and IoU of the object class, mean ± std over seeds.",
    )
    add_variant_arguments(parser)
    parser.add_argument("--seeds", type=as_argument(SEEDS), default=DEFAULT_SEEDS, metavar="N",
                        help=f"training seeds (default {DEFAULT_SEEDS})")
    parser.add_argument("--steps", type=as_argument(STEPS), default=DEFAULT_STEPS, metavar="N",
                        help=f"steps per seed (default {DEFAULT_STEPS})")
    parser.add_argument("--batch", type=as_argument(BATCH), default=DEFAULT_BATCH, metavar="N",
                        help=f"tiles per step (default {DEFAULT_BATCH})")
    parser.add_argument("--tile-out", type=as_argument(SIZE), default=DEFAULT_TILE_OUT, metavar="PX",
                        help="output side of a training tile; each variant takes the smallest valid input "
                        f"giving at least that (default {DEFAULT_TILE_OUT})")
    parser.add_argument("--tile-in", type=as_argument(SIZE), default=None, metavar="PX",
                        help="the input tile side instead (must be valid for the variant)")
    parser.add_argument("--halo", type=as_argument(integer(0, MAX_SIZE)), default=None, metavar="PX",
                        help="output px dropped per tile side at inference (default 0 valid, tile/4 padded)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULT_OPTIMIZER,
                        help=f"adam or sgd (momentum 0.99, the paper's) (default {DEFAULT_OPTIMIZER})")
    parser.add_argument("--lr", type=as_argument(LEARNING_RATE, float), default=None,
                        help="learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items())
                        + ")")
    parser.add_argument("--init", choices=INITS, default="paper",
                        help="paper: Gaussian, std sqrt(2/N) (default); torch: the layers' defaults")
    parser.add_argument("--no-weight-map", action="store_true", help="plain cross-entropy, no border weights")
    parser.add_argument("--augment", choices=AUGMENTS, default=DEFAULT_AUGMENT,
                        help="none, flips (and 90° rotations), or elastic (the paper's warp, then flips) "
                        f"(default {DEFAULT_AUGMENT})")
    parser.add_argument("--elastic-sigma", type=as_argument(ELASTIC_SIGMA, float), default=None,
                        metavar="PX", help="with --augment elastic: the std of the warp's coarse displacements, px "
                        f"(default {DEFAULT_ELASTIC_SIGMA_PX:g}, the paper's)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=DEFAULT_LR_SCHEDULE,
                        help=f"learning rate over the steps (default {DEFAULT_LR_SCHEDULE})")
    parser.add_argument("--curve-every", type=as_argument(integer(0, 1_000_000)), default=None, metavar="N",
                        help="score the validation split every N steps: the learning curve (default: 10 points; "
                        "0: only at the end)")
    parser.add_argument("--train-images", type=as_argument(TRAIN_IMAGES), default=None, metavar="N",
                        help="train on the first N training images only (default: all)")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="a folder of image/mask pairs (images/ + masks/, one folder per image with one "
                        "mask per object, or NAME_img/NAME_masks files; in train/ + val/ or not) instead of the "
                        "synthetic task")
    parser.add_argument("--layout", choices=LAYOUTS, default=None,
                        help="how --data is laid out (default: found from the folder)")
    add_execution_arguments(parser, TRAINED)
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.set_defaults(func=cmd_quality)
