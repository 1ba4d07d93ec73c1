"""Data: the scikit-learn digits as PNG files in an ImageFolder tree, read back by
DataLoader workers, the way a paper's image data set (CIFAR, ImageNet) is read.

1797 grey-scale 8x8 images of hand-written digits, 10 classes. They ship inside the
scikit-learn package, so nothing is downloaded: on first use they are written once
(``write_image_folder``; also ``python -m {{ cookiecutter.package_name }}.data``) as

    <data.root>/train/<class>/<id>.png   1527 images
    <data.root>/test/<class>/<id>.png     270 images (the data set's own test set)

outside the package (``data.root``, a cache directory by default), and every later
run reads those files. Validation is held out of the train folder (``val_fraction``,
by ``data.seed``). Point ``data.root`` at your own ImageFolder tree and most of this
file keeps working; replace ``write_image_folder`` with what downloads yours.

Each split is a ``torch.utils.data.Dataset`` (``ImageFiles``): example i is decoded
from its file when it is read. Training batches come from engine/loader.py's
``LoaderBatches`` with ``data.num_workers`` workers decoding and augmenting ahead of
the loop (resumed exactly, and the same batches for any number of workers);
evaluation reads the val and test files in order, without augmentation.

Three rules every vision reproduction must keep, and the tests check:
- normalisation statistics come from the training split only (computing them on
  all data leaks the test set into preprocessing);
- augmentation is applied to training batches only, and only transformations that
  keep the label (a horizontal flip turns some digits into other symbols, so it is
  not used here; small shifts are safe);
- one class-to-index map for every split, from the sorted class folders of the
  train folder (a map built per split from an unsorted listing labels some val or
  test images with another class's index).

Contract shared with the rest of the package (every paper type provides it):
- ``spec(cfg)`` -> dict of what the model needs to know: sizes, and any other
  values (floats such as a noise schedule's betas are fine).
- ``build_splits(cfg)`` -> {"train" | "val" | "test": {"inputs": Tensor, "targets": Tensor}},
  or a Dataset whose items are such dicts for one example (as here).
- ``train_batches(cfg, split, batch_size, generator, model)`` -> endless training
  batches; every per-batch random draw (augmentation, noise, a time step) comes
  from ``generator``, so that a resumed run draws the same.
- ``overfit_batch(cfg, split, n, generator, model)`` -> n examples to memorise.
- ``batch_layout(spec)`` -> per key of a training batch: shape and dtype.
- optional ``source_targets(cfg, split_name, examples)`` -> each example's target
  read from its source without the Dataset (here: its folder's name).
A batch's "inputs" is what the model's forward receives: one tensor, or a dict of
tensors ({"x_t": ..., "t": ...}) when the model takes several.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from omegaconf import MISSING, OmegaConf
from PIL import Image
from torch.utils.data import Dataset

from .engine.loader import LoaderBatches

SPLITS = ("train", "val", "test")
PIXEL_MAX = 16.0  # the digits' raw pixel values are integers 0..16
# The data set's own train/test division, fixed when the files are written (as
# CIFAR's test set is fixed): the training seed never moves an image across it.
TEST_FRACTION, TEST_SEED = 0.15, 0


@dataclass
class DataConfig:
    """The keys of configs/data/*.yaml and their types (see configs/schema.py)."""

    root: str = MISSING  # the ImageFolder tree: train/<class>/*.png, test/<class>/*.png
    val_fraction: float = MISSING
    seed: int = MISSING
    max_shift: int = MISSING
    normalize: bool = MISSING
    num_workers: int = MISSING
    prefetch_factor: int = MISSING


def spec(cfg) -> dict[str, int]:
    return {"in_channels": 1, "image_size": 8, "num_classes": 10}


# --- Writing the image files (once) -------------------------------------------------


{% include "_paper_types/_shared/read_digits.py" %}

def write_image_folder(root: Path) -> None:
    """The digits as 8-bit grey-scale PNGs in an ImageFolder tree under ``root``.

    Written into a temporary directory beside ``root`` and renamed into place whole,
    so an interrupted first run leaves no half-written data set behind (and two runs
    starting at once both end with one complete tree)."""
    pixels, labels = read_digits()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(TEST_SEED))
    n_test = round(TEST_FRACTION * len(labels))
    folders = {"test": order[:n_test].tolist(), "train": order[n_test:].tolist()}
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        for folder, ids in folders.items():
            for i in ids:
                path = staging / folder / str(labels[i]) / f"{i:04d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                levels = np.rint(pixels[i].reshape(8, 8) * (255 / PIXEL_MAX)).astype(np.uint8)
                Image.fromarray(levels).save(path)
        os.rename(staging, root)
    except BaseException as error:  # Ctrl-C included: no half-written tree stays
        shutil.rmtree(staging, ignore_errors=True)
        if not (isinstance(error, OSError) and (root / "train").is_dir()):
            raise  # (an OSError with the tree in place: another run wrote it first)


def image_root(cfg) -> Path:
    """``data.root``, written first if it holds no images yet."""
    root = Path(cfg.root).expanduser()
    if not (root / "train").is_dir():
        write_image_folder(root)
    return root


# --- Reading them --------------------------------------------------------------------


def find_classes(folder: Path) -> list[str]:
    """The class names: the sub-folders of ``folder``, sorted (a directory listing's
    own order differs between file systems and machines)."""
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())


def split_samples(cfg) -> dict[str, list[tuple[Path, int]]]:
    """Each split's (file, class index) pairs, sorted by file. One class map, from
    the train folder, for every split; validation held out of the train folder."""
    root = image_root(cfg)
    class_index = {name: i for i, name in enumerate(find_classes(root / "train"))}

    def listed(folder: Path) -> list[tuple[Path, int]]:
        return [(path, class_index[path.parent.name]) for path in sorted(folder.glob("*/*.png"))]

    train = listed(root / "train")
    held_out = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))
    n_val = round(cfg.val_fraction * len(train))
    val_ids = set(held_out[:n_val].tolist())
    return {
        "train": [sample for i, sample in enumerate(train) if i not in val_ids],
        "val": [sample for i, sample in enumerate(train) if i in val_ids],
        "test": listed(root / "test"),
    }


def read_image(path: Path) -> torch.Tensor:
    """A PNG as [C, H, W] float32 in [0, 1] (channels first, as nn.Conv2d expects)."""
    with Image.open(path) as image:
        pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)  # grey / RGB
    return torch.from_numpy(np.ascontiguousarray(pixels))


class ImageFiles(Dataset):
    """One split's image files, decoded when read. Example i:
    {"inputs": [C, H, W] float32, normalised; "targets": its class index;
    "index": i, which ``source_targets`` looks the file up by}."""

    def __init__(self, samples: list[tuple[Path, int]], mean: torch.Tensor, std: torch.Tensor):
        self.samples = samples  # as torchvision's ImageFolder.samples
        self.mean, self.std = mean, std  # [C, 1, 1]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        path, label = self.samples[i]
        return {
            "inputs": (read_image(path) - self.mean) / self.std,
            "targets": torch.tensor(label),
            "index": torch.tensor(i),
        }


def channel_statistics(samples: list[tuple[Path, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std [C, 1, 1] of the images. Read here in one pass over
    the files (~0.1 s for the digits); for a data set of millions of images compute
    them once, on the training split only, and write them into the data config."""
    images = torch.stack([read_image(path) for path, _ in samples])
    return images.mean(dim=(0, 2, 3))[:, None, None], images.std(dim=(0, 2, 3))[:, None, None]


def build_splits(cfg) -> dict[str, ImageFiles]:
    """The three splits as Datasets, normalised with statistics of the training
    split (the files left after validation is held out) for every split."""
    samples = split_samples(cfg)
    mean, std = channel_statistics(samples["train"])
    if not cfg.normalize:  # the ablation: raw [0, 1] pixels
        mean, std = torch.zeros_like(mean), torch.ones_like(std)
    return {name: ImageFiles(samples[name], mean, std) for name in SPLITS}


def source_targets(cfg, split_name: str, examples: dict) -> dict[str, torch.Tensor]:
    """Each example's class as its file says: the folder it is filed in, numbered by
    the sorted class folders of the train folder. Written apart from the Dataset's
    labels (the generic check of targets, judge/data_checks.py, holds those against
    these): only the file of each example is looked up in the split's list."""
    root = Path(cfg.root).expanduser()
    classes = sorted(entry.name for entry in (root / "train").iterdir() if entry.is_dir())
    files = [path for path, _ in split_samples(cfg)[split_name]]
    labels = [classes.index(files[i].parent.name) for i in examples["index"].tolist()]
    return {"targets": torch.tensor(labels)}


# --- Training batches ----------------------------------------------------------------


def random_shift(image: torch.Tensor, max_shift: int, generator: torch.Generator):
    """``image`` [C, H, W] moved by up to ``max_shift`` pixels in x and y (a
    label-preserving augmentation). Pixels shifted in take the image's background
    value: its minimum, which is raw 0 after normalisation."""
    if max_shift == 0:
        return image
    c, h, w = image.shape
    pad = max_shift
    canvas = image.new_full((c, h + 2 * pad, w + 2 * pad), image.min().item())
    canvas[:, pad : pad + h, pad : pad + w] = image
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    return canvas[:, dy : dy + h, dx : dx + w]


def augment(example: dict, generator: torch.Generator, max_shift: int) -> dict:
    """The training augmentation of one example, in whichever worker reads it; its
    randomness from ``generator`` (seeded per example by LoaderBatches)."""
    return {**example, "inputs": random_shift(example["inputs"], max_shift, generator)}


def batch_layout(data_spec) -> dict[str, tuple[tuple, torch.dtype]]:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it."""
    c, s = data_spec["in_channels"], data_spec["image_size"]
    return {
        "inputs": (("batch", c, s, s), torch.float32),
        "targets": (("batch",), torch.long),
        "index": (("batch",), torch.long),
    }


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless shuffled training batches, decoded by ``cfg.num_workers`` DataLoader
    workers (0: in this process), each image randomly shifted by up to
    ``cfg.max_shift`` pixels (0 turns augmentation off), moved to the model's
    device. Evaluation reads the splits in order, without augmentation."""
    device = next(model.parameters()).device if model is not None else None
    return LoaderBatches(
        split,
        batch_size,
        generator,
        num_workers=cfg.num_workers,
        prefetch_factor=cfg.prefetch_factor,
        augment=partial(augment, max_shift=cfg.max_shift),  # a partial: workers pickle it
        device=device,
    )


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model=None):
    """``n`` training examples for the overfit checks (tests/test_overfit.py and
    the gauntlet): a batch exactly as training draws it, read in this process."""
    device = next(model.parameters()).device if model is not None else None
    shift = partial(augment, max_shift=cfg.max_shift)
    return next(LoaderBatches(split, n, generator, augment=shift, device=device))


def main() -> None:
    """``python -m {{ cookiecutter.package_name }}.data [--root DIR]``: write the image files now."""
    config = Path(__file__).parent / "configs" / "data" / "digits.yaml"
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--root", default=OmegaConf.load(config).root, help="default: %(default)s")
    root = Path(parser.parse_args().root).expanduser()
    if (root / "train").is_dir():
        print(f"{root} holds the images already")
        return
    write_image_folder(root)
    print(f"wrote {sum(1 for _ in root.glob('*/*/*.png'))} images under {root}")


if __name__ == "__main__":
    main()
