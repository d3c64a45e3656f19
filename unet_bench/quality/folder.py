"""Load real data: a folder of single-channel image/mask pairs, PNG or TIFF (multi-page TIFF stacks too).

The folder is in one of the `layouts` (found from the folder, or named), most simply::

    ROOT/images/NAME.png|.tif|.tiff     grey-scale image (8-bit, 16-bit or float)
    ROOT/masks/NAME.png|.tif|.tiff      same size; 0 = background, objects non-zero

or one mask file per object (``ROOT/ID/images/ID.png`` + ``ROOT/ID/masks/*.png``), or ``NAME_img.png``
beside ``NAME_masks.png``. A mask with more than two values is read as instance labels (every object its
own integer, so touching objects stay apart); a binary mask's objects are its 4-connected components
(`labels`). A multi-page TIFF (how the paper's EM stacks ship) gives one image per page, paired page by
page with its mask.
``ROOT/train`` and ``ROOT/val`` in a layout each give the split; otherwise `load_split` holds out a
share: a seeded choice of single images, and of each stack its last contiguous block of pages, since
neighbouring slices of one volume are nearly the same image and must not land on both sides.
With ``volumes=True`` (a 3-D network) every stack is one (D, H, W) volume instead, labelled in 3-D, and the
held-out share of a stack is its last contiguous block of pages as a volume of its own; `load_volume`
reads one stack that way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unet_bench.errors import BenchError
from unet_bench.quality.data import SegmentationSet, Split, standardize
from unet_bench.quality.labels import objects_and_classes
from unet_bench.quality.layouts import Pair, pairs, read_pages


def _set(pages: list[tuple[np.ndarray, np.ndarray]]) -> SegmentationSet:
    images, masks, instances = [], [], []
    for image, mask in pages:
        objects, classes = objects_and_classes(mask)
        images.append(standardize(image))
        masks.append(classes)
        instances.append(objects)
    return SegmentationSet(tuple(images), tuple(masks), tuple(instances))


def load_folder(root: str | Path, volumes: bool = False, layout: str | None = None) -> SegmentationSet:
    """Every image/mask pair under ``root`` in ``layout`` (None: found from the folder); with ``volumes``,
    each stack as one volume."""
    found = pairs(Path(root), layout)
    if volumes:
        return _set([(np.stack(images), np.stack(masks)) for _, images, masks in _stacks(found)])
    return _set([page for _, images, masks in found for page in zip(images, masks, strict=True)])


def load_split(root: str | Path, val_fraction: float = 0.25, seed: int = 0, volumes: bool = False,
               layout: str | None = None) -> Split:
    """``root/train`` + ``root/val`` if both exist, else ``root`` with a share ``val_fraction`` held out;
    ``volumes``: stacks read as (D, H, W) volumes, for a 3-D network; ``layout``: see `layouts` (None:
    found from each folder).

    A split without a single object is refused: a network trained on it can only learn background, and
    one scored on it has nothing to find.
    """
    root = Path(root)
    if (root / "train").is_dir() and (root / "val").is_dir():
        split = Split(load_folder(root / "train", volumes, layout), load_folder(root / "val", volumes, layout))
    elif volumes:
        split = hold_out_volumes(_stacks(pairs(root, layout)), val_fraction)
    else:
        split = hold_out(pairs(root, layout), val_fraction, seed)
    for name, part in (("training", split.train), ("validation", split.val)):
        if not any(inst.any() for inst in part.instances):
            raise BenchError(f"{root}: the {name} split has no object (its masks are all 0); put images with "
                             "objects in it or change the share held out")
    return split


def hold_out(found: list[Pair], val_fraction: float, seed: int) -> Split:
    """Single images: a seeded ``val_fraction`` of them. Stacks: the last contiguous ``val_fraction`` of
    each stack's pages (never pages drawn at random, which would put neighbouring slices on both sides)."""
    singles = [(images[0], masks[0]) for _, images, masks in found if len(images) == 1]
    train, val = [], []
    for path, images, masks in found:
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


def hold_out_volumes(stacks: list[Pair], val_fraction: float) -> Split:
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


def _stacks(found: list[Pair]) -> list[Pair]:
    """``found`` checked to be multi-page stacks: a 3-D network needs volumes, not single images."""
    for path, images, _ in found:
        if len(images) < 2:
            raise BenchError(f"{path.name} has one page; a 3-D network trains on volumes: give multi-page TIFF "
                             "stacks (pages = depth) or a 2-D network")
    return found


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
