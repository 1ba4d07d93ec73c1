"""Data (phase 1): the image files, shapes, dtypes, determinism for a seed, disjoint
splits, and labels that stay with their images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    SPLITS,
    build_splits,
    find_classes,
    read_digits,
    read_image,
    split_samples,
    train_batches,
    write_image_folder,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    in_order,
    num_examples,
)


def read_all(split) -> dict[str, torch.Tensor]:
    """Every example of a split as tensors, in order (its files decoded)."""
    return next(in_order(split, num_examples(split)))


def test_split_sizes_shapes_and_dtypes(cfg, splits, data_spec):
    assert sum(len(splits[name]) for name in SPLITS) == len(read_digits()[1])
    c, s = data_spec["in_channels"], data_spec["image_size"]
    for split in splits.values():
        examples = read_all(split)
        assert examples["inputs"].shape[1:] == (c, s, s)
        assert examples["inputs"].dtype == torch.float32
        assert examples["targets"].dtype == torch.long
        assert set(examples["targets"].unique().tolist()) == set(range(data_spec["num_classes"]))


def test_same_seed_same_splits_other_seed_other_validation_split(cfg, splits):
    again = build_splits(cfg.data)
    for name in SPLITS:
        assert again[name].samples == splits[name].samples
        assert torch.equal(read_all(again[name])["inputs"], read_all(splits[name])["inputs"])
    other_cfg = cfg.data.copy()
    other_cfg.seed = cfg.data.seed + 1
    other = split_samples(other_cfg)
    assert other["val"] != splits["val"].samples
    # The test folder is the data set's own: no seed moves an image into or out of it.
    assert other["test"] == splits["test"].samples


def test_no_image_is_in_two_splits(splits):
    # Neither the same file nor the same pixels (a copy of a test image among the
    # training files is a leak no list of paths shows).
    files, images = {}, {}
    for name in SPLITS:
        for path, _ in splits[name].samples:
            assert path not in files, f"{path} is in {files[path]} and {name}"
            files[path] = name
        for image in read_all(splits[name])["inputs"]:
            key = image.numpy().tobytes()
            assert key not in images, f"the same image is in {images[key]} and {name}"
            images[key] = name


def test_the_image_files_hold_the_raw_digits_exactly(cfg):
    # Written as 8-bit levels round(v * 255 / 16): 16 levels apart, so every raw
    # value 0..16 comes back exactly, and the file keeps the row-major pixel order
    # (a transposed write would pass every shape check: the images are square).
    pixels, labels = read_digits()
    for name, samples in split_samples(cfg.data).items():
        for path, label in samples[:: max(1, len(samples) // 50)]:
            i = int(path.stem)  # the file is named by its row of the digits file
            assert label == labels[i], f"{name}: {path} is filed under another class"
            levels = torch.round(read_image(path) * 16).flatten()
            assert torch.equal(levels, torch.as_tensor(pixels[i], dtype=torch.float32)), path


def test_one_class_map_for_every_split_from_the_sorted_train_folder(cfg, tmp_path):
    root = tmp_path / "tree"
    for folder in ("b", "a", "c"):  # created out of order: listings follow no rule
        (root / folder).mkdir(parents=True)
    (root / "not-a-class.txt").write_text("")
    assert find_classes(root) == ["a", "b", "c"]
    # Every split's labels are the index of its folder's name in the train folder's
    # classes (a map built per split shifts every index after a class it lacks).
    classes = find_classes(Path(cfg.data.root).expanduser() / "train")
    for name, samples in split_samples(cfg.data).items():
        assert all(label == classes.index(path.parent.name) for path, label in samples), name


def test_an_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from PIL import Image

    real_save, saved = Image.Image.save, []

    def save_then_fail(image, path, *args, **kwargs):
        if len(saved) == 100:
            raise KeyboardInterrupt  # Ctrl-C halfway through the first run
        saved.append(path)
        return real_save(image, path, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_image_folder(tmp_path / "digits")
    assert list(tmp_path.iterdir()) == [], "a half-written tree (or its staging) stayed"
    monkeypatch.undo()
    write_image_folder(tmp_path / "digits")
    assert len(list((tmp_path / "digits").glob("*/*/*.png"))) == len(read_digits()[1])


def test_each_image_keeps_the_label_of_its_raw_digit(cfg, splits, model):
    """Every image, in each split and in a training batch, carries the label that
    read_digits() gives the same raw digit. Normalisation is affine, so an image and
    its raw digit correlate exactly; a shuffle of labels against images (two
    permutations, a sort of one and not the other) keeps every statistic and would
    only show as a model that cannot learn."""
    pixels, raw_labels = read_digits()

    def unit_rows(x):
        x = torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1)
        x = x - x.mean(dim=1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True)

    # As the files store them: 8-bit levels, round(v * 255 / 16).
    raw, raw_labels = (
        unit_rows(torch.round(torch.as_tensor(pixels) * 255 / 16)),
        torch.as_tensor(raw_labels),
    )
    data_cfg = cfg.data.copy()
    data_cfg.max_shift = 0  # the training path without augmentation: pixels comparable
    generator = torch.Generator().manual_seed(0)
    batch = next(train_batches(data_cfg, splits["train"], 256, generator, model))
    named = [(name, read_all(split)) for name, split in splits.items()]
    for name, examples in [*named, ("training batch", batch)]:
        same_digit = unit_rows(examples["inputs"]) @ raw.T > 1 - 1e-6  # [N, 1797]
        assert same_digit.any(dim=1).all(), f"{name}: an image that is no raw digit"
        # A raw image may occur twice; its label must be one of those digits'.
        labelled = same_digit & (raw_labels[None, :] == examples["targets"][:, None])
        wrong = int((~labelled.any(dim=1)).sum())
        assert wrong == 0, f"{name}: {wrong} images carry another digit's label"
