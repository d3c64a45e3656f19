"""Quality data: the synthetic task (seeded, cell-like, with touching cells) and the folder loader."""

import numpy as np
import pytest
from PIL import Image

from unet_bench.errors import BenchError
from unet_bench.quality.folder import load_folder, load_split, load_volume
from unet_bench.quality.labels import separation_borders
from unet_bench.quality.synthetic import synthetic_set, synthetic_task, touching_pairs


def test_synthetic_data_is_deterministic_per_seed():
    a, b, c = (synthetic_set(3, 64, seed=s) for s in (5, 5, 6))
    for x, y in zip(a.images + a.masks + a.instances, b.images + b.masks + b.instances, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.images[0], c.images[0])
    # image i depends on (seed, i) only: a longer set starts with the same images
    np.testing.assert_array_equal(synthetic_set(4, 64, seed=5).masks[2], a.masks[2])


def test_synthetic_task_has_touching_cells_separated_by_background_borders():
    split = synthetic_task(0, n_train=4, n_val=2, size=96)
    assert len(split.train) == 4 and len(split.val) == 2
    assert not np.array_equal(split.train.images[0], split.val.images[0])
    for image, mask, inst in zip(split.train.images, split.train.masks, split.train.instances, strict=True):
        assert image.dtype == np.float32 and abs(image.mean()) < 1e-5 and abs(image.std() - 1) < 1e-4
        assert set(np.unique(mask)) == {0, 1}
        np.testing.assert_array_equal(inst > 0, mask == 1)
        assert touching_pairs(inst) >= 1  # at least two cells meet across a thin border
        assert not separation_borders(inst).any()  # ... but no two objects share an edge in the mask
    assert 0.15 < split.train.foreground_fraction() < 0.6


def test_separation_borders_mark_both_sides_of_a_meeting_line():
    labels = np.zeros((3, 6), dtype=np.int32)
    labels[:, 1:3], labels[:, 3:5] = 1, 2
    border = separation_borders(labels)
    assert border[:, 2].all() and border[:, 3].all() and border.sum() == 6


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_loader_reads_png_and_tiff_pairs(tmp_path):
    rng = np.random.default_rng(0)
    png = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    tif16 = rng.integers(0, 65535, (16, 18), dtype=np.uint16)
    mask_png = np.zeros((20, 24), np.uint8)
    mask_png[2:8, 2:8], mask_png[2:8, 10:15] = 255, 255  # two objects
    mask_tif = np.zeros((16, 18), np.uint8)
    mask_tif[5:9, 5:9] = 1
    write(tmp_path / "images" / "a.png", png)
    write(tmp_path / "masks" / "a.png", mask_png)
    write(tmp_path / "images" / "b.tif", tif16)
    write(tmp_path / "masks" / "b.tiff", mask_tif)
    data = load_folder(tmp_path)
    assert len(data) == 2
    assert data.images[0].shape == (20, 24) and data.images[1].shape == (16, 18)
    expected = (png - png.mean()) / png.std()
    np.testing.assert_allclose(data.images[0], expected, atol=1e-5)
    np.testing.assert_allclose(data.images[1], (tif16 - tif16.mean()) / tif16.std(), atol=1e-5)
    np.testing.assert_array_equal(data.masks[0], mask_png > 0)
    np.testing.assert_array_equal(data.masks[1], mask_tif > 0)
    assert data.instances[0].max() == 2 and data.instances[1].max() == 1


def test_folder_loader_reads_multipage_tiff_stacks_page_by_page(tmp_path):
    pages = [np.full((12, 12), 10 * (i + 1), np.uint8) for i in range(3)]
    for p in pages:
        p[0, 0] = 0  # not constant, so standardising keeps the page recognisable
    masks = [np.zeros((12, 12), np.uint8) for _ in range(3)]
    for i, m in enumerate(masks):
        m[i : i + 4, 2:6] = 255
    for folder, stack in (("images", pages), ("masks", masks)):
        (tmp_path / folder).mkdir()
        frames = [Image.fromarray(a) for a in stack]
        frames[0].save(tmp_path / folder / "stack.tif", save_all=True, append_images=frames[1:])
    data = load_folder(tmp_path)
    assert len(data) == 3
    for i in range(3):
        np.testing.assert_array_equal(data.masks[i], masks[i] > 0)


def test_load_split_holds_out_a_seeded_share_or_uses_train_and_val(tmp_path):
    for i in range(4):
        write(tmp_path / "flat" / "images" / f"{i}.png", np.full((8, 8), i, np.uint8))
        write(tmp_path / "flat" / "masks" / f"{i}.png", np.eye(8, dtype=np.uint8))
    split = load_split(tmp_path / "flat", val_fraction=0.25, seed=0)
    assert (len(split.train), len(split.val)) == (3, 1)
    assert len(load_split(tmp_path / "flat", val_fraction=0.5).val) == 2
    for part, n in (("train", 2), ("val", 1)):
        for i in range(n):
            write(tmp_path / "split" / part / "images" / f"{i}.png", np.eye(8, dtype=np.uint8))
            write(tmp_path / "split" / part / "masks" / f"{i}.png", np.eye(8, dtype=np.uint8))
    split = load_split(tmp_path / "split")
    assert (len(split.train), len(split.val)) == (2, 1)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({}, "is not a folder"),
        ({"images/a.png": (8, 8)}, "a.png has no mask"),
        ({"images/a.png": (8, 8), "masks/a.png": (8, 9)}, "its mask is (8, 9)"),
        ({"images/a.png": (8, 8, 3), "masks/a.png": (8, 8)}, "must be single-channel"),
        ({"images/a.png": (8, 8), "masks/a.png": (8, 8, 3)}, "must be single-channel"),
    ],
)
def test_folder_loader_refuses_bad_folders_in_one_line(tmp_path, layout, message):
    (tmp_path / "masks").mkdir()
    for name, shape in layout.items():
        array = np.zeros(shape, np.uint8)
        array[:2, :2] = 1  # an object, so that only the named fault is wrong
        write(tmp_path / name, array)
    root = tmp_path if layout else tmp_path / "nothing"
    with pytest.raises(BenchError) as error:
        load_folder(root)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_instance_mask_keeps_touching_objects_apart(tmp_path):
    mask = np.zeros((10, 12), np.uint16)
    mask[2:8, 1:6], mask[2:8, 6:11] = 7, 300  # two objects sharing an edge, any label values
    write(tmp_path / "images" / "a.tif", np.arange(120, dtype=np.uint16).reshape(10, 12))
    write(tmp_path / "masks" / "a.tif", mask)
    data = load_folder(tmp_path)
    inst, classes = data.instances[0], data.masks[0]
    assert sorted(np.unique(inst)) == [0, 1, 2]  # two objects, renumbered, not one blob
    assert (inst == 1).sum() == 6 * 4 and (inst == 2).sum() == 6 * 4  # each lost its column at the edge
    assert not classes[2:8, 5:7].any()  # a background border where they meet, for the weight map
    np.testing.assert_array_equal(classes, inst > 0)
    # the same objects as a binary mask read as one blob (its connected component), as before
    write(tmp_path / "masks" / "a.tif", (mask > 0).astype(np.uint8) * 255)
    assert load_folder(tmp_path).instances[0].max() == 1


def test_a_binary_mask_splits_objects_at_the_drawn_background_line(tmp_path):
    mask = np.zeros((6, 9), np.uint8)
    mask[1:5, 1:4], mask[1:5, 5:8] = 255, 255
    write(tmp_path / "images" / "a.png", np.eye(6, 9, dtype=np.uint8))
    write(tmp_path / "masks" / "a.png", mask)
    inst = load_folder(tmp_path).instances[0]
    assert inst.max() == 2 and (inst == 1).sum() == (inst == 2).sum() == 12


def stack(tmp_path, masks, name="stack.tif"):
    pages = [np.full(m.shape, 10 * (i + 1), np.uint8) for i, m in enumerate(masks)]
    for p in pages:
        p[0, 0] = 0
    for folder, arrays in (("images", pages), ("masks", masks)):
        (tmp_path / folder).mkdir(exist_ok=True)
        frames = [Image.fromarray(a) for a in arrays]
        frames[0].save(tmp_path / folder / name, save_all=True, append_images=frames[1:])


def test_a_stack_is_split_into_contiguous_blocks_of_pages(tmp_path):
    masks = [np.zeros((8, 8), np.uint8) for _ in range(8)]
    for i, m in enumerate(masks):
        m[1:3, i % 6 : i % 6 + 2] = 1
    stack(tmp_path, masks)
    split = load_split(tmp_path, val_fraction=0.25, seed=3)
    # page i's object sits at column i % 6: train holds pages 0-5 in order, validation 6 and 7
    assert [int(np.argmax(m.any(0))) for m in split.train.masks] == [0, 1, 2, 3, 4, 5]
    assert [int(np.argmax(m.any(0))) for m in split.val.masks] == [0, 1]
    assert len(load_split(tmp_path, val_fraction=0.25, seed=4).val) == 2  # no seed moves the block


def test_a_split_without_objects_is_refused_in_one_line(tmp_path):
    masks = [np.zeros((8, 8), np.uint8) for _ in range(4)]
    masks[0][2:4, 2:4] = 1  # only the first page has an object; the held-out last page has none
    stack(tmp_path, masks)
    with pytest.raises(BenchError, match=r"the validation split has no object") as error:
        load_split(tmp_path, val_fraction=0.25)
    assert "\n" not in str(error.value)
    stack(tmp_path, [np.zeros((8, 8), np.uint8)] * 2)
    with pytest.raises(BenchError, match=r"mask stack.tif is empty \(every pixel 0\)"):
        load_folder(tmp_path)


def test_a_stack_reads_as_one_volume_with_the_same_label_reading(tmp_path):
    masks = [np.zeros((8, 8), np.uint8) for _ in range(3)]
    for m in masks:
        m[2:6, 1:4], m[2:6, 4:7] = 1, 2  # two touching objects through the whole depth
    stack(tmp_path, masks)
    image, labels = load_volume(tmp_path / "images" / "stack.tif", tmp_path / "masks" / "stack.tif")
    assert image.shape == labels.shape == (3, 8, 8) and image.dtype == np.float32
    assert sorted(np.unique(labels)) == [0, 1, 2] and not labels[:, :, 3:5].any()


def test_for_a_3d_network_a_stack_splits_into_a_training_and_a_validation_volume(tmp_path):
    masks = [np.zeros((8, 8), np.uint8) for _ in range(8)]
    for i, m in enumerate(masks):
        m[1:3, i % 6 : i % 6 + 2] = 1
    stack(tmp_path, masks)
    split = load_split(tmp_path, val_fraction=0.25, volumes=True)
    (train,), (val,) = split.train.masks, split.val.masks
    assert train.shape == (6, 8, 8) and val.shape == (2, 8, 8)
    assert [int(np.argmax(page.any(0))) for page in val] == [0, 1]  # pages 6 and 7, in order
    # the diagonal run of squares is one object in 3-D (each page's square overlaps the next)
    assert split.train.instances[0].max() == 1
    write(tmp_path / "images" / "flat.png", np.eye(8, dtype=np.uint8))
    write(tmp_path / "masks" / "flat.png", np.eye(8, dtype=np.uint8))
    with pytest.raises(BenchError, match=r"flat.png has one page; a 3-D network trains on volumes"):
        load_split(tmp_path, volumes=True)
