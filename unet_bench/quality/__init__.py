"""Segmentation quality: seeded synthetic data, a folder loader, the paper's training, overlap-tile
inference, Dice/IoU, and `evaluate_quality(cfg)` tying them together."""

from unet_bench.quality.evaluate import DEFAULT_STEPS, DEFAULT_TILE_OUT, evaluate_quality

__all__ = ["DEFAULT_STEPS", "DEFAULT_TILE_OUT", "evaluate_quality"]
