"""Quality training defaults and choices, importable without torch (the CLI's help and the cost model)."""

DEFAULT_STEPS = 300  # per seed: at base_width 8 every variant beats the best constant by ~0.4 Dice
DEFAULT_TILE_OUT = 64  # training tile output side: paper network 252 px in, padded 64 px
DEFAULT_BATCH = 4  # tiles per step
OPTIMIZERS = ("sgd", "adam")
INITS = ("paper", "torch")
