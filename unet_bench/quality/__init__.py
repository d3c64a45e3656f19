"""Segmentation quality: seeded synthetic data, a folder loader, the paper's training, overlap-tile
inference, Dice/IoU, and `evaluate_quality(cfg)` (in `unet_bench.quality.evaluate`) tying them together."""
