"""`SegmentationSet` and `Split`: the one shape every data source (synthetic, a folder) hands to training.

Images may differ in size (a folder of EM slices need not be uniform), so a set holds lists of 2-D arrays
rather than one stacked array. Instance labels ride along because the paper's border weight map needs to
know which foreground pixels belong to which object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unet_bench.errors import BenchError


@dataclass(frozen=True)
class SegmentationSet:
    """Single-channel images with their masks and instance labels, index-aligned.

    Attributes:
        images: float32 (H, W) arrays, standardised per image (zero mean, unit std); (D, H, W) volumes for
            a 3-D network (every array of a set has the same number of axes).
        masks: int64 (H, W) class maps: 0 = background (incl. borders between touching objects), 1 = object.
        instances: int32 (H, W) maps: 0 = background, k > 0 = the k-th object (what the weight map's
            distances d1, d2 are measured to).
    """

    images: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray, ...]
    instances: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.images:
            raise BenchError("a segmentation set needs at least one image")
        if not len(self.images) == len(self.masks) == len(self.instances):
            raise BenchError(
                f"{len(self.images)} images but {len(self.masks)} masks "
                f"and {len(self.instances)} instance maps"
            )
        for i, (image, mask, inst) in enumerate(zip(self.images, self.masks, self.instances, strict=True)):
            if image.ndim != self.images[0].ndim or image.ndim not in (2, 3) or image.shape != mask.shape \
                    or image.shape != inst.shape:
                raise BenchError(
                    f"image {i} is {image.shape} but its mask is {mask.shape} and its instances "
                    f"{inst.shape}; all three must be the same 2-D size (3-D for volumes), as the first image"
                )

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> SegmentationSet:
        """The images at ``indices``, in that order."""
        return SegmentationSet(
            tuple(self.images[i] for i in indices),
            tuple(self.masks[i] for i in indices),
            tuple(self.instances[i] for i in indices),
        )

    def foreground_fraction(self) -> float:
        """Share of object pixels over the whole set (sets the Dice of the best constant prediction)."""
        return float(sum(int((m > 0).sum()) for m in self.masks) / sum(m.size for m in self.masks))


@dataclass(frozen=True)
class Split:
    """Training and validation sets; validation images are never trained on."""

    train: SegmentationSet
    val: SegmentationSet


def standardize(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit std, float32: so one learning rate suits 8-bit, 16-bit and synthetic images alike."""
    image = np.asarray(image, dtype=np.float64)
    std = image.std()
    return ((image - image.mean()) / (std if std > 0 else 1.0)).astype(np.float32)
