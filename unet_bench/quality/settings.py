"""Quality training defaults and choices, importable without torch (the CLI's help and the cost model)."""

from unet_bench.errors import BenchError, choices

# per seed: at base_width 8 the paper network learns the synthetic task's cells beyond their intensity
# (~0.75 Dice against ~0.60 for the tuned threshold); 300 steps leave it within ~0.1 of the threshold
DEFAULT_STEPS = 400
DEFAULT_TILE_OUT = 64  # training tile output side: paper network 252 px in, padded 64 px
DEFAULT_BATCH = 4  # tiles per step
OPTIMIZERS = ("sgd", "adam")
# Adam: in a few hundred steps it gets further than the paper's SGD (momentum 0.99), which at 300 steps
# stayed near the tuned threshold on the synthetic task; sgd stays one flag away
DEFAULT_OPTIMIZER = "adam"
DEFAULT_LR = {"sgd": 1e-3, "adam": 2e-3}
INITS = ("paper", "torch")
# augmentation of each training tile: none, flips (and 90° rotations), or the paper's elastic warp before them
AUGMENTS = ("none", "flips", "elastic")
DEFAULT_AUGMENT = "flips"
SCHEDULES = ("constant", "cosine", "warmup-cosine")  # the learning rate over the steps
# warmup-cosine: the learning rate rises linearly to lr over this share of the steps, then falls as the
# cosine does over the rest. Without it Adam at lr 0.005 sometimes kills the paper network (no norm) in its first
# steps: one seed in two stayed at object F1 0.06 on the synthetic task, and with it reached 0.55.
WARMUP_SHARE = 0.1
DEFAULT_LR_SCHEDULE = "constant"


def augment_choice(value: str | bool) -> str:
    """One of `AUGMENTS`; True and False (how records and files said it before there was a choice) read as
    ``flips`` and ``none``."""
    if isinstance(value, bool):
        return "flips" if value else "none"
    if value not in AUGMENTS:
        raise BenchError(f"augment={value!r} is not valid; choose {choices(AUGMENTS)}")
    return value
# Instance metrics drop predicted objects smaller than this (px, voxels in 3-D), as Cellpose does by default
# (its min_size 15): a speck of a few px that a predicted border cut off a cell is no cell at any scale
# these tasks have (the synthetic task's smallest true object is 25 px; 25 of one network's 60 false
# objects were specks of 1-2 px). True objects are never dropped.
MIN_OBJECT_PX = 15
CURVE_POINTS = 10  # learning-curve points over a run, by default (each scores the validation split once)
LAYOUTS = ("images-masks", "object-masks", "suffix-pairs")  # folder layouts `quality.layouts` reads
