"""How annotated folders are laid out, and reading each layout into image/mask page pairs.

Three layouts are common, and each is recognised from the folder itself (or named with ``layout``)::

    images-masks    ROOT/images/NAME.png + ROOT/masks/NAME.png       one mask per image, paired by name
    object-masks    ROOT/ID/images/ID.png + ROOT/ID/masks/*.png      one binary mask per object (the 2018
                                                                     Data Science Bowl's layout)
    suffix-pairs    ROOT/NAME_img.png + ROOT/NAME_masks.png          pairs named by suffix in one folder

(.tif/.tiff as well as .png everywhere). Per-object masks are merged into one instance mask, object k
labelled k (where two masks overlap, the later one wins), so touching objects stay apart just as in an
instance-labelled mask. Images of the object-masks layout are read as grey (that set ships them as RGBA);
in the other layouts an image must be single-channel already.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from unet_bench.errors import BenchError, choices
from unet_bench.quality.settings import LAYOUTS

SUFFIXES = (".png", ".tif", ".tiff")
MULTI_CHANNEL = ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA", "RGBX")
IMAGE_SUFFIX, MASK_SUFFIX = "_img", "_masks"  # the suffix-pairs layout's names: NAME_img.png, NAME_masks.png
WHAT = {
    "images-masks": "images/ and masks/ with one mask per image, same names",
    "object-masks": "one folder per image, ID/images/ID.png and ID/masks/*.png with one mask per object",
    "suffix-pairs": f"NAME{IMAGE_SUFFIX}.png beside NAME{MASK_SUFFIX}.png",
}

Pair = tuple[Path, list[np.ndarray], list[np.ndarray]]  # image file, its pages, its mask's pages


def read_pages(path: Path, grey: bool = False) -> list[np.ndarray]:
    """Every page of an image file as a 2-D array (one page for PNG); ``grey``: colour pages are converted
    to grey rather than refused."""
    try:
        with Image.open(path) as image:
            pages = []
            for page in ImageSequence.Iterator(image):
                if grey and page.mode in MULTI_CHANNEL:
                    page = page.convert("L")
                array = np.array(page)
                if page.mode in MULTI_CHANNEL or array.ndim != 2:
                    raise BenchError(f"{path} is {page.mode} with shape {array.shape}; images and masks must "
                                     "be single-channel (grey-scale or label) images")
                pages.append(array)
            return pages
    except OSError as error:
        raise BenchError(f"cannot read {path}: {error}") from None


def image_files(folder: Path) -> dict[str, Path]:
    """The .png/.tif/.tiff files of ``folder`` by stem, in name order."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in SUFFIXES}


def _object_folders(root: Path) -> list[Path]:
    return [d for d in sorted(root.iterdir()) if d.is_dir() and (d / "images").is_dir() and (d / "masks").is_dir()]


def _suffix_stems(root: Path) -> dict[str, tuple[Path | None, Path | None]]:
    """NAME -> (NAME_img file, NAME_masks file), either None where missing."""
    stems: dict[str, tuple[Path | None, Path | None]] = {}
    for stem, path in image_files(root).items():
        for k, suffix in enumerate((IMAGE_SUFFIX, MASK_SUFFIX)):
            if stem.endswith(suffix):
                pair = list(stems.get(stem[: -len(suffix)], (None, None)))
                pair[k] = path
                stems[stem[: -len(suffix)]] = (pair[0], pair[1])
    return stems


def detect(root: Path) -> str:
    """The layout ``root`` is in; a folder that fits none is refused in one line naming the layouts and
    what it holds."""
    if not root.is_dir():
        raise BenchError(f"{root} is not a folder; give a folder of images and masks ({describe()})")
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "images-masks"
    if _object_folders(root):
        return "object-masks"
    if any(image and mask for image, mask in _suffix_stems(root).values()):
        return "suffix-pairs"
    entries = sorted(root.iterdir())
    files = [p.name for p in entries if p.is_file()]
    folders = [p.name + "/" for p in entries if p.is_dir()]
    found = ", ".join((folders + files)[:5]) + (", ..." if len(entries) > 5 else "") if entries else "nothing"
    held = " and ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in ((len(folders), "folder"),
                                                                               (len(files), "file")))
    raise BenchError(f"{root} fits no layout ({describe()}); it holds {held}: {found}")


def describe() -> str:
    """The layouts in words, for a message."""
    return "; ".join(f"{name}: {what}" for name, what in WHAT.items())


def pairs(root: Path, layout: str | None = None) -> list[Pair]:
    """Every image/mask pair under ``root`` in ``layout`` (None: detected), checked: sizes and page counts
    agree, and no mask is empty."""
    if layout is not None and layout not in LAYOUTS:
        raise BenchError(f"layout {layout!r} is not valid; choose {choices(LAYOUTS)}")
    layout = layout or detect(root)
    if not root.is_dir():
        raise BenchError(f"{root} is not a folder; expected the {layout} layout ({WHAT[layout]})")
    found = {"images-masks": _images_masks, "object-masks": _object_masks, "suffix-pairs": _suffix_pairs}[layout](root)
    out = []
    for image_path, image_pages, (mask_name, mask_pages) in found:
        if len(image_pages) != len(mask_pages):
            raise BenchError(f"{image_path.name} has {len(image_pages)} pages but its mask {len(mask_pages)}")
        for page, (image, mask) in enumerate(zip(image_pages, mask_pages, strict=True)):
            if image.shape != mask.shape:
                raise BenchError(f"{image_path.name} page {page} is {image.shape}; its mask is {mask.shape}")
        if not any(mask.any() for mask in mask_pages):
            raise BenchError(f"mask {mask_name} is empty (every pixel 0); give objects non-zero values "
                             "or leave the image out")
        out.append((image_path, image_pages, mask_pages))
    return out


Found = list[tuple[Path, list[np.ndarray], tuple[str, list[np.ndarray]]]]  # image, pages, (mask name, pages)


def _images_masks(root: Path) -> Found:
    for part in ("images", "masks"):
        if not (root / part).is_dir():
            raise BenchError(f"{root / part} is not a folder; the images-masks layout has images/ and masks/ "
                             "side by side")
    images, masks = image_files(root / "images"), image_files(root / "masks")
    if not images:
        raise BenchError(f"no .png/.tif/.tiff images in {root / 'images'}")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise BenchError(f"image {images[missing[0]].name} has no mask in {root / 'masks'} (same name, any suffix)")
    return [(path, read_pages(path), (masks[stem].name, read_pages(masks[stem]))) for stem, path in images.items()]


def _object_masks(root: Path) -> Found:
    folders = _object_folders(root)
    if not folders:
        raise BenchError(f"{root} has no ID/images/ + ID/masks/ folders (the object-masks layout)")
    out = []
    for folder in folders:
        images = list(image_files(folder / "images").values())
        if len(images) != 1:
            raise BenchError(f"{folder / 'images'} holds {len(images)} images; the object-masks layout has one "
                             "image per folder")
        pages = read_pages(images[0], grey=True)
        if len(pages) != 1:
            raise BenchError(f"{images[0].name} has {len(pages)} pages; the object-masks layout takes single images")
        objects = np.zeros(pages[0].shape, np.int32)
        for k, path in enumerate(image_files(folder / "masks").values(), start=1):
            mask = read_pages(path)[0]
            if mask.shape != objects.shape:
                raise BenchError(f"mask {path.name} of {folder.name} is {mask.shape}; its image is {objects.shape}")
            objects[mask > 0] = k
        out.append((images[0], pages, (f"{folder.name}/masks/", [objects])))
    return out


def _suffix_pairs(root: Path) -> Found:
    stems = _suffix_stems(root)
    if not stems:
        raise BenchError(f"no NAME{IMAGE_SUFFIX} / NAME{MASK_SUFFIX} images in {root} (the suffix-pairs layout)")
    out = []
    for stem, (image, mask) in sorted(stems.items()):
        if image is None or mask is None:
            have, lacks = (mask, IMAGE_SUFFIX) if image is None else (image, MASK_SUFFIX)
            raise BenchError(f"{have.name} has no {stem}{lacks} file beside it in {root}")
        out.append((image, read_pages(image), (mask.name, read_pages(mask))))
    return out
