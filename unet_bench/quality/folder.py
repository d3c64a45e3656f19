"""Load real data: a folder of single-channel image/mask pairs, PNG or TIFF (multi-page TIFF stacks too).

Layout::

    ROOT/images/NAME.png|.tif|.tiff     grey-scale image (8-bit, 16-bit or float)
    ROOT/masks/NAME.png|.tif|.tiff      same size; non-zero = object, 0 = background

A multi-page TIFF (how the paper's EM stacks ship) gives one image per page, paired page by page with its
mask. ``ROOT/train`` and ``ROOT/val`` with that layout each give the split; otherwise `load_split` holds
out a seeded share of the images. Objects are the 4-connected components of the mask: the borders the
annotators drew between touching cells separate them, which is what the weight map needs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence
from scipy import ndimage

from unet_bench.errors import BenchError
from unet_bench.quality.data import SegmentationSet, Split, standardize

SUFFIXES = (".png", ".tif", ".tiff")
MULTI_CHANNEL = ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA", "RGBX")


def read_pages(path: Path) -> list[np.ndarray]:
    """Every page of an image file as a 2-D array (one page for PNG)."""
    try:
        with Image.open(path) as image:
            pages = []
            for page in ImageSequence.Iterator(image):
                if page.mode in MULTI_CHANNEL:
                    raise BenchError(f"{path} is {page.mode}; images and masks must be single-channel")
                pages.append(np.array(page))
            return pages
    except OSError as error:
        raise BenchError(f"cannot read {path}: {error}") from None


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise BenchError(f"{folder} is not a folder; expected images/ and masks/ side by side")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES}


def load_folder(root: str | Path) -> SegmentationSet:
    """Every image/mask pair under ``root/images`` and ``root/masks``, paired by file name (stem)."""
    root = Path(root)
    images, masks = _files(root / "images"), _files(root / "masks")
    if not images:
        raise BenchError(f"no .png/.tif/.tiff images in {root / 'images'}")
    missing = sorted(set(images) - set(masks))
    if missing:
        name = images[missing[0]].name
        raise BenchError(f"image {name} has no mask in {root / 'masks'} (same name, any suffix)")
    out_images, out_masks, out_instances = [], [], []
    for stem, image_path in images.items():
        image_pages, mask_pages = read_pages(image_path), read_pages(masks[stem])
        if len(image_pages) != len(mask_pages):
            raise BenchError(f"{image_path.name} has {len(image_pages)} pages but its mask {len(mask_pages)}")
        for page, (image, mask) in enumerate(zip(image_pages, mask_pages, strict=True)):
            if image.shape != mask.shape:
                raise BenchError(f"{image_path.name} page {page} is {image.shape}; its mask is {mask.shape}")
            objects = mask > 0
            out_images.append(standardize(image))
            out_masks.append(objects.astype(np.int64))
            out_instances.append(ndimage.label(objects)[0].astype(np.int32))
    return SegmentationSet(tuple(out_images), tuple(out_masks), tuple(out_instances))


class EmptyMasksWarning(UserWarning):
    """Every mask of a split is empty: a network trained on it learns background only (Dice 0)."""


def load_split(root: str | Path, val_fraction: float = 0.25, seed: int = 0) -> Split:
    """``root/train`` + ``root/val`` if both exist, else ``root`` with a seeded ``val_fraction`` held out.

    Warns (`EmptyMasksWarning`) when every mask of a split is empty: training still runs, but it can
    only learn background, and a Dice of 0 would otherwise look like a failed network.
    """
    root = Path(root)
    if (root / "train").is_dir() and (root / "val").is_dir():
        split = Split(load_folder(root / "train"), load_folder(root / "val"))
    else:
        split = _hold_out(root, val_fraction, seed)
    for name, part in (("training", split.train), ("validation", split.val)):
        if not any(mask.any() for mask in part.masks):
            warnings.warn(f"{root}: every {name} mask is empty (no non-zero pixel); the network can only "
                          "learn background, so Dice will be 0", EmptyMasksWarning, stacklevel=2)
    return split


def _hold_out(root: Path, val_fraction: float, seed: int) -> Split:
    data = load_folder(root)
    n_val = round(len(data) * val_fraction)
    if not 0 < n_val < len(data):
        raise BenchError(
            f"holding out {val_fraction:.0%} of {len(data)} images leaves no training or no validation "
            "image; add images or give train/ and val/ folders"
        )
    order = np.random.default_rng(seed).permutation(len(data))
    return Split(data.subset(sorted(order[n_val:])), data.subset(sorted(order[:n_val])))
