"""Vision pitfalls: preprocessing that leaks, augmentation that lies, evaluation
that is not repeatable, and inputs in the wrong layout or range.

Each of these still trains, which is why they survive into reproductions: test-set
statistics in the normalisation inflate the score a little, a label-changing
augmentation caps it, and a random evaluation transform makes every number noisy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    random_shift,
    read_digits,
    read_image,
    train_batches,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    in_order,
    num_examples,
)
from {{ cookiecutter.package_name }}.eval import (
    evaluate,
)
from {{ cookiecutter.package_name }}.model import (
    build_model,
)


def read_all(split) -> dict[str, torch.Tensor]:
    """Every example of a split as tensors, in order (its files decoded)."""
    return next(in_order(split, num_examples(split)))


def test_normalised_training_images_have_zero_mean_unit_std_per_channel(splits):
    # Statistics come from the training split, so on it they are exactly 0 and 1;
    # on val/test they are only close (they were not used to compute them).
    train = read_all(splits["train"])["inputs"]
    mean = train.mean(dim=(0, 2, 3))
    std = train.std(dim=(0, 2, 3))
    # torch.allclose: torch.testing.assert_close imports sympy on its first call (~0.7 s).
    assert torch.allclose(mean, torch.zeros_like(mean), rtol=0, atol=1e-5), mean
    assert torch.allclose(std, torch.ones_like(std), rtol=0, atol=1e-5), std
    test_mean = read_all(splits["test"])["inputs"].mean(dim=(0, 2, 3))
    assert not torch.allclose(test_mean, torch.zeros_like(test_mean), atol=1e-5), (
        "test images are exactly centred: were the statistics computed on the test split?"
    )


def test_input_contract(batch, data_spec, splits):
    # float32, N x C x H x W (channels first, as nn.Conv2d expects), finite, and
    # the raw pixels the normalisation starts from lie in [0, 1].
    inputs = batch["inputs"]
    c, s = data_spec["in_channels"], data_spec["image_size"]
    assert inputs.dtype == torch.float32
    assert inputs.ndim == 4 and inputs.shape[1:] == (c, s, s)
    assert torch.isfinite(inputs).all()
    raw = torch.stack([read_image(path) for path, _ in splits["train"].samples])
    assert raw.shape[1:] == (c, s, s)
    assert raw.min() == 0.0 and raw.max() == 1.0


def shift_sources(moved: torch.Tensor, images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Indices of the ``images`` [N, C, H, W] that ``moved`` [C, H, W] is a shift
    of, by at most ``max_shift`` pixels (compared where the two overlap)."""
    h, w = images.shape[-2:]
    found = torch.zeros(len(images), dtype=torch.bool)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            window = moved[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
            source = images[..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
            found |= (source == window).flatten(1).all(dim=1)
    return torch.nonzero(found).flatten()


def test_augmentation_keeps_shape_dtype_and_labels(cfg, splits, model):
    train = splits["train"]
    augmented = next(train_batches(cfg.data, train, 64, torch.Generator().manual_seed(0), model))
    everything = read_all(train)
    plain_cfg = cfg.data.copy()
    plain_cfg.max_shift = 0
    plain = next(train_batches(plain_cfg, train, 64, torch.Generator().manual_seed(0), model))
    assert augmented["inputs"].shape == plain["inputs"].shape
    assert augmented["inputs"].dtype == plain["inputs"].dtype
    assert not torch.equal(augmented["inputs"], plain["inputs"]), "augmentation did nothing"
    # Every augmented image is a small shift of a training image with the same label:
    # not flipped, not another example's, not paired with another example's label.
    for image, label in zip(augmented["inputs"], augmented["targets"], strict=True):
        sources = shift_sources(image, everything["inputs"], cfg.data.max_shift)
        assert len(sources) > 0, "an augmented image is no shift of any training image"
        assert label in everything["targets"][sources], "an augmented image lost its label"


def test_shift_moves_content_by_whole_pixels():
    image = torch.zeros(1, 8, 8)
    image[0, 3, 4] = 1.0
    generator = torch.Generator().manual_seed(0)
    shifted = torch.stack([random_shift(image, 1, generator) for _ in range(50)])
    rows, cols = torch.nonzero(shifted[:, 0] == 1.0, as_tuple=True)[1:]
    assert len(rows) == 50, "the bright pixel must survive every shift of one pixel"
    assert set(rows.tolist()) <= {2, 3, 4} and set(cols.tolist()) <= {3, 4, 5}
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 1


def test_evaluation_is_deterministic(cfg, data_spec, splits):
    # Dropout switched on (p = 0.5): the example's config has none, and a model
    # without randomness gives the same numbers in either mode, so an evaluation
    # that forgot eval mode, or a dropout that ignores it (``F.dropout(x, p)`` is
    # on by default), would pass. Two batch sizes: batch norm left on batch
    # statistics makes the result depend on them.
    m = cfg.model.copy()
    m.dropout = 0.5
    torch.manual_seed(0)
    model = build_model(m, data_spec)
    first = evaluate(model, splits["val"], batch_size=64)
    second = evaluate(model, splits["val"], batch_size=97)
    assert first.keys() == second.keys()
    for name in first:
        assert abs(first[name] - second[name]) < 1e-6, name


@pytest.mark.slow  # imports sklearn.datasets (~0.8 s)
def test_the_digits_read_from_the_file_are_load_digits():
    from sklearn.datasets import load_digits

    pixels, labels = read_digits()
    digits = load_digits()
    assert np.array_equal(pixels, digits.data) and np.array_equal(labels, digits.target)
