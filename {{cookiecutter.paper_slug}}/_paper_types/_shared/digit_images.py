def load_images() -> torch.Tensor:
    """All images as [N, 64] float32 in [-1, 1]: level v becomes v / 8 - 1."""
    pixels = torch.tensor(read_digits()[0], dtype=torch.float32)
    return pixels / (PIXEL_MAX / 2) - 1


def split_images(val_fraction: float, test_fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """Seeded disjoint splits of the images, {"train" | "val" | "test": [n, 64]}: the same
    seed gives the diffusion and gan examples the same test images."""
    images = load_images()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_val = round(val_fraction * len(images))
    n_test = round(test_fraction * len(images))
    index = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    return {name: images[index[name]] for name in SPLITS}
