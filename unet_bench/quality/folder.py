"""Load real data: a folder of single-channel image/mask pairs, PNG or TIFF (multi-page TIFF stacks too).

Layout::

    ROOT/images/NAME.png|.tif|.tiff     grey-scale image (8-bit, 16-bit or float)
    ROOT/masks/NAME.png|.tif|.tiff      same size; 0 = background, objects non-zero

A mask with more than two values is read as instance labels (every object its own integer, so touching
objects stay apart); a binary mask's objects are its 4-connected components (`labels`). A multi-page TIFF
(how the paper's EM stacks ship) gives one image per page, paired page by page with its mask.
``ROOT/train`` and ``ROOT/val`` with that layout each give the split; otherwise `load_split` holds out a
share: a seeded choice of single images, and of each stack its last contiguous block of pages, since
neighbouring slices of one volume are nearly the same image and must not land on both sides.
With ``volumes=True`` (a 3-D network) every stack is one (D, H, W) volume instead, labelled in 3-D, and the
held-out share of a stack is its last contiguous block of pages as a volume of its own; `load_volume`
reads one stack that way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from unet_bench.errors import BenchError
from unet_bench.quality.data import SegmentationSet, Split, standardize
from unet_bench.quality.labels import objects_and_classes

SUFFIXES = (".png", ".tif", ".tiff")
MULTI_CHANNEL = ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA", "RGBX")


def read_pages(path: Path) -> list[np.ndarray]:
    """Every page of an image file as a 2-D array (one page for PNG)."""
    try:
        with Image.open(path) as image:
            pages = []
            for page in ImageSequence.Iterator(image):
                array = np.array(page)
                if page.mode in MULTI_CHANNEL or array.ndim != 2:
                    raise BenchError(f"{path} is {page.mode} with shape {array.shape}; images and masks must "
                                     "be single-channel (grey-scale or label) images")
                pages.append(array)
            return pages
    except OSError as error:
        raise BenchError(f"cannot read {path}: {error}") from None


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise BenchError(f"{folder} is not a folder; expected images/ and masks/ side by side")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES}


def _pairs(root: Path) -> list[tuple[Path, list[np.ndarray], list[np.ndarray]]]:
    """(image file, its pages, its mask's pages) for every pair under ``root``, checked."""
    images, masks = _files(root / "images"), _files(root / "masks")
    if not images:
        raise BenchError(f"no .png/.tif/.tiff images in {root / 'images'}")
    missing = sorted(set(images) - set(masks))
    if missing:
        name = images[missing[0]].name
        raise BenchError(f"image {name} has no mask in {root / 'masks'} (same name, any suffix)")
    out = []
    for stem, image_path in images.items():
        image_pages, mask_pages = read_pages(image_path), read_pages(masks[stem])
        if len(image_pages) != len(mask_pages):
            raise BenchError(f"{image_path.name} has {len(image_pages)} pages but its mask {len(mask_pages)}")
        for page, (image, mask) in enumerate(zip(image_pages, mask_pages, strict=True)):
            if image.shape != mask.shape:
                raise BenchError(f"{image_path.name} page {page} is {image.shape}; its mask is {mask.shape}")
        if not any(mask.any() for mask in mask_pages):
            raise BenchError(f"mask {masks[stem].name} is empty (every pixel 0); give objects non-zero values "
                             "or leave the image out")
        out.append((image_path, image_pages, mask_pages))
    return out


def _set(pages: list[tuple[np.ndarray, np.ndarray]]) -> SegmentationSet:
    images, masks, instances = [], [], []
    for image, mask in pages:
        objects, classes = objects_and_classes(mask)
        images.append(standardize(image))
        masks.append(classes)
        instances.append(objects)
    return SegmentationSet(tuple(images), tuple(masks), tuple(instances))


def load_folder(root: str | Path, volumes: bool = False) -> SegmentationSet:
    """Every image/mask pair under ``root/images`` and ``root/masks``, paired by file name (stem); with
    ``volumes``, each stack as one volume."""
    pairs = _pairs(Path(root))
    if volumes:
        return _set([(np.stack(images), np.stack(masks)) for _, images, masks in _stacks(pairs)])
    return _set([page for _, images, masks in pairs for page in zip(images, masks, strict=True)])


def load_split(root: str | Path, val_fraction: float = 0.25, seed: int = 0, volumes: bool = False) -> Split:
    """``root/train`` + ``root/val`` if both exist, else ``root`` with a share ``val_fraction`` held out;
    ``volumes``: stacks read as (D, H, W) volumes, for a 3-D network.

    A split without a single object is refused: a network trained on it can only learn background, and
    one scored on it has nothing to find.
    """
    root = Path(root)
    if (root / "train").is_dir() and (root / "val").is_dir():
        split = Split(load_folder(root / "train", volumes), load_folder(root / "val", volumes))
    elif volumes:
        split = hold_out_volumes(_stacks(_pairs(root)), val_fraction)
    else:
        split = hold_out(_pairs(root), val_fraction, seed)
    for name, part in (("training", split.train), ("validation", split.val)):
        if not any(inst.any() for inst in part.instances):
            raise BenchError(f"{root}: the {name} split has no object (its masks are all 0); put images with "
                             "objects in it or change the share held out")
    return split


def hold_out(pairs: list[tuple[Path, list[np.ndarray], list[np.ndarray]]], val_fraction: float,
             seed: int) -> Split:
    """Single images: a seeded ``val_fraction`` of them. Stacks: the last contiguous ``val_fraction`` of
    each stack's pages (never pages drawn at random, which would put neighbouring slices on both sides)."""
    singles = [(images[0], masks[0]) for _, images, masks in pairs if len(images) == 1]
    train, val = [], []
    for path, images, masks in pairs:
        if len(images) > 1:
            cut = _cut(path, len(images), val_fraction)
            pages = list(zip(images, masks, strict=True))
            train += pages[:cut]
            val += pages[cut:]
    n_val = round(len(singles) * val_fraction)
    if singles and not (0 < n_val < len(singles) or (train and val)):
        raise BenchError(
            f"holding out {val_fraction:.0%} of {len(singles)} images leaves no training or no validation "
            "image; add images or give train/ and val/ folders"
        )
    order = np.random.default_rng(seed).permutation(len(singles))
    train += [singles[i] for i in sorted(order[n_val:])]
    val += [singles[i] for i in sorted(order[:n_val])]
    return Split(_set(train), _set(val))


def hold_out_volumes(stacks: list[tuple[Path, list[np.ndarray], list[np.ndarray]]], val_fraction: float) -> Split:
    """Each stack cut once along its pages: the first block a training volume, the last a validation one."""
    train, val = [], []
    for path, images, masks in stacks:
        cut = _cut(path, len(images), val_fraction)
        train.append((np.stack(images[:cut]), np.stack(masks[:cut])))
        val.append((np.stack(images[cut:]), np.stack(masks[cut:])))
    return Split(_set(train), _set(val))


def _cut(path: Path, pages: int, val_fraction: float) -> int:
    """Where a stack of ``pages`` is cut so that its last ``val_fraction`` is held out, refused where one
    side would be empty."""
    cut = pages - round(pages * val_fraction)
    if not 0 < cut < pages:
        raise BenchError(f"holding out {val_fraction:.0%} of the {pages} pages of {path.name} leaves no "
                         "training or no validation page; change the share or give train/ and val/ folders")
    return cut


def _stacks(pairs: list[tuple[Path, list[np.ndarray], list[np.ndarray]]]
            ) -> list[tuple[Path, list[np.ndarray], list[np.ndarray]]]:
    """``pairs`` checked to be multi-page stacks: a 3-D network needs volumes, not single images."""
    for path, images, _ in pairs:
        if len(images) < 2:
            raise BenchError(f"{path.name} has one page; a 3-D network trains on volumes: give multi-page TIFF "
                             "stacks (pages = depth) or a 2-D network")
    return pairs


def load_volume(image_path: str | Path, mask_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One multi-page stack as a volume: (image (D, H, W) float32, standardised over the whole volume;
    instance labels (D, H, W) int32, pages = depth).

    Labels are read as `load_folder` reads them, in 3-D: an instance mask keeps its labels, a binary one
    is split into 6-connected components; where two objects meet a background border is cut.
    """
    image_path, mask_path = Path(image_path), Path(mask_path)
    images, masks = read_pages(image_path), read_pages(mask_path)
    shapes = {a.shape for a in images + masks}
    if len(images) != len(masks) or len(shapes) != 1:
        raise BenchError(f"{image_path.name} ({len(images)} pages of {images[0].shape}) and {mask_path.name} "
                         f"({len(masks)} pages of {masks[0].shape}) do not match; they must be the same size")
    mask = np.stack(masks)
    if not mask.any():
        raise BenchError(f"mask {mask_path.name} is empty (every voxel 0); give objects non-zero values")
    instances = objects_and_classes(mask)[0]
    return standardize(np.stack(images)), instances
