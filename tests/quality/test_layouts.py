"""The folder layouts: images/ + masks/, one mask file per object, and NAME_img / NAME_masks pairs."""

import numpy as np
import pytest
from PIL import Image

from unet_bench.errors import BenchError
from unet_bench.quality.folder import load_folder, load_split
from unet_bench.quality.layouts import detect


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def two_touching(shape=(16, 20)):
    """Instance labels of two rectangles that share an edge, and a third apart."""
    labels = np.zeros(shape, np.uint8)
    labels[2:8, 2:8], labels[2:8, 8:14], labels[10:14, 3:7] = 1, 2, 3
    return labels


def object_masks_folder(root, ids=("img0", "img1")):
    """The 2018 Data Science Bowl's layout: RGBA images, one binary mask per object."""
    rng = np.random.default_rng(0)
    for i, name in enumerate(ids):
        grey = rng.integers(0, 256, (16, 20), dtype=np.uint8)
        write(root / name / "images" / f"{name}.png", np.stack([grey] * 3 + [np.full_like(grey, 255)], -1))
        labels = two_touching()
        for k in range(1, 4 - i):  # the second image has one object fewer
            write(root / name / "masks" / f"object{k}.png", ((labels == k) * 255).astype(np.uint8))
    return root


def test_one_mask_per_object_merges_into_instances_that_stay_apart(tmp_path):
    root = object_masks_folder(tmp_path / "dsb")
    assert detect(root) == "object-masks"
    data = load_folder(root)
    assert len(data) == 2
    assert data.instances[0].max() == 3 and data.instances[1].max() == 2
    # the two touching rectangles are two objects with a background border between them, as the
    # images-masks layout gives an instance-labelled mask
    first = data.instances[0]
    assert set(np.unique(first[2:8, 2:14])) == {0, 1, 2} and (data.masks[0][2:8, 7:9] == 0).all()
    grey = np.array(Image.open(root / "img0" / "images" / "img0.png").convert("L"), np.float64)
    np.testing.assert_allclose(data.images[0], (grey - grey.mean()) / grey.std(), atol=1e-5)


def test_suffix_pairs_in_one_folder(tmp_path):
    for name in ("a", "b", "c", "d"):
        write(tmp_path / f"{name}_img.png", np.random.default_rng(1).integers(0, 256, (16, 20), dtype=np.uint8))
        write(tmp_path / f"{name}_masks.png", two_touching())
    assert detect(tmp_path) == "suffix-pairs"
    data = load_folder(tmp_path)
    assert len(data) == 4 and all(inst.max() == 3 for inst in data.instances)
    split = load_split(tmp_path, val_fraction=0.25, layout="suffix-pairs")
    assert (len(split.train), len(split.val)) == (3, 1)
    (tmp_path / "d_masks.png").unlink()
    with pytest.raises(BenchError, match="d_img.png has no d_masks file beside it"):
        load_folder(tmp_path)


def test_train_and_val_folders_may_be_in_any_layout(tmp_path):
    object_masks_folder(tmp_path / "train")
    for name in ("a", "b"):
        write(tmp_path / "val" / f"{name}_img.png", np.arange(320, dtype=np.uint8).reshape(16, 20))
        write(tmp_path / "val" / f"{name}_masks.png", two_touching())
    split = load_split(tmp_path)
    assert (len(split.train), len(split.val)) == (2, 2)


def test_a_folder_in_no_layout_names_the_layouts_and_what_it_holds(tmp_path):
    write(tmp_path / "cells.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "notes").mkdir()
    with pytest.raises(BenchError) as error:
        load_folder(tmp_path)
    text = str(error.value)
    assert "\n" not in text and "fits no layout" in text
    assert all(name in text for name in ("images-masks", "object-masks", "suffix-pairs"))
    assert text.endswith("it holds 1 folder and 1 file: notes/, cells.png")
    with pytest.raises(BenchError, match="layout 'cellpose' is not valid; choose"):
        load_folder(tmp_path, layout="cellpose")
    with pytest.raises(BenchError, match=r"no NAME_img / NAME_masks images in"):
        load_folder(tmp_path, layout="suffix-pairs")
    with pytest.raises(BenchError, match="images is not a folder; the images-masks layout"):
        load_folder(tmp_path, layout="images-masks")
