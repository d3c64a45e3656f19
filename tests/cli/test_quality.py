"""`unet-bench quality`, run as a user would: on a folder of images the test writes, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from unet_bench.quality.synthetic import synthetic_set


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unet_bench", "quality", *args],
                          capture_output=True, text=True, timeout=120)


TINY = ["--set", "depth=2", "--set", "base_width=4", "--threads", "1"]


def test_quality_on_a_folder_prints_dice_and_iou(tmp_path):
    data = synthetic_set(4, 48, seed=0)
    for i, (image, mask) in enumerate(zip(data.images, data.masks, strict=True)):
        for folder, array in (("images", (image - image.min()) * 40), ("masks", mask * 255)):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(array.astype(np.uint8)).save(tmp_path / folder / f"{i}.png")
    result = run("paper", *TINY, "--seeds", "2", "--steps", "2", "--tile-out", "16", "--data", str(tmp_path),
                 "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["quality_seeds"] == 2 and out["train_steps"] == 2
    assert out["extra"]["train_images"] == 3 and out["extra"]["val_images"] == 1
    assert 0 <= out["dice_mean"] <= 1 and len(out["extra"]["dice_per_seed"]) == 2
    text = run("padded", *TINY, "--seeds", "1", "--steps", "1", "--tile-out", "16", "--data", str(tmp_path))
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("padded[depth=2,base_width=4]: Dice ") and "IoU " in text.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "argument --seeds: 0 is not allowed; it must be an integer in [1, 100]"),
        (["--halo", "40", "--tile-out", "32"], "halo 40 is not valid"),
        (["--tile-in", "70"], "input height 70 is not valid"),
        (["--data", "/nonexistent"], "is not a folder"),
        (["--optimizer", "rmsprop"], "invalid choice"),
        (["--elastic-sigma", "3"], "--elastic-sigma sets the elastic warp's strength; it needs --augment elastic"),
        (["--augment", "elastic", "--elastic-sigma", "0"], "argument --elastic-sigma: 0.0 is not allowed"),
    ],
)
def test_bad_quality_arguments_give_one_line_and_exit_2(args, message):
    result = run("paper", *TINY, *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_empty_masks_give_one_error_line_and_exit_2(tmp_path):
    data = synthetic_set(4, 48, seed=0)
    for i, image in enumerate(data.images):
        for folder, array in (("images", (image - image.min()) * 40), ("masks", np.zeros_like(image))):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(array.astype(np.uint8)).save(tmp_path / folder / f"{i}.png")
    result = run("paper", *TINY, "--seeds", "1", "--steps", "1", "--tile-out", "16", "--data", str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "unet-bench quality: error: mask 0.png is empty (every pixel 0); give objects non-zero values or leave the "
        "image out"]


def test_a_folder_in_no_layout_is_one_line_and_exit_2_and_layout_names_one(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "cells.png")
    result = run("paper", *TINY, "--data", str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "fits no layout (images-masks: " in line and line.endswith("it holds 0 folders and 1 file: cells.png")
    data = synthetic_set(4, 48, seed=0)
    for i, (image, inst) in enumerate(zip(data.images, data.instances, strict=True)):
        Image.fromarray(((image - image.min()) * 40).astype(np.uint8)).save(tmp_path / f"{i}_img.png")
        Image.fromarray(inst.astype(np.uint8)).save(tmp_path / f"{i}_masks.png")
    result = run("padded", *TINY, "--seeds", "1", "--steps", "1", "--tile-out", "16", "--data", str(tmp_path),
                 "--layout", "suffix-pairs", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["extra"]["train_images"] == 3
    result = run("padded", *TINY, "--data", str(tmp_path), "--layout", "object-masks")
    assert result.returncode == 2 and "has no ID/images/ + ID/masks/ folders" in result.stderr
