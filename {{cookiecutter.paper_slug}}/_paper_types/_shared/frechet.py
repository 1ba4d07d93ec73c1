def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [-1, 1] back to their grey levels 0..16 (int64)."""
    return ((x + 1) * 8).round().clamp(0, 16).long()


def level_frequencies(train: torch.Tensor) -> torch.Tensor:
    """Each pixel's distribution over the 17 levels in the training images,
    add-one smoothed (no level has probability 0), [P, 17]."""
    counts = torch.zeros(train.size(1), 17, dtype=torch.float64)
    counts.scatter_add_(1, to_levels(train).T.cpu(), torch.ones(train.T.shape, dtype=torch.float64))
    return (counts + 1) / (len(train) + 17)


def independent_pixel_samples(train: torch.Tensor, n: int, generator) -> torch.Tensor:
    """n images from the baseline: every pixel drawn from its own level frequencies."""
    levels = torch.multinomial(level_frequencies(train), n, replacement=True, generator=generator)
    return levels.T.float() / 8 - 1


def principal_components(train: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images' mean [P] and top-k principal directions [P, k] (float64)."""
    x = train.double().cpu()
    mean = x.mean(dim=0)
    covariance = (x - mean).T @ (x - mean) / (len(x) - 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    return mean, vectors[:, -k:]


def psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by its
    eigendecomposition (rounding's tiny negative eigenvalues set to 0)."""
    values, vectors = torch.linalg.eigh(m)
    return vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets a and b [N, k]:
    |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)."""
    a, b = torch.atleast_2d(a.double().T).T, torch.atleast_2d(b.double().T).T  # [N] -> [N, 1]
    mean_a, mean_b = a.mean(dim=0), b.mean(dim=0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))
    root_a = psd_sqrt(cov_a)
    cross = psd_sqrt(root_a @ cov_b @ root_a)
    return float((mean_a - mean_b).pow(2).sum() + torch.trace(cov_a + cov_b - 2 * cross))


def pca_features(train: torch.Tensor, pca_dim: int):
    """The map from images [N, P] to their coordinates [N, pca_dim] along the
    training images' top principal components (float64, on the CPU).

    Features fixed by the training images, not a network trained on other data as
    FID's Inception features are: nothing to download, and the same space for
    every model and split."""
    mean, directions = principal_components(train, pca_dim)
    return lambda x: (x.double().cpu() - mean) @ directions


def frechet_distances(
    samples: torch.Tensor, images: torch.Tensor, train: torch.Tensor, pca_dim: int
) -> dict[str, float]:
    """The Frechet distance of the model's ``samples`` to a split's ``images``
    ([N, P] each, pixels in [-1, 1]) in ``pca_features`` space, and beside it
    ``frechet_floor``: as many training images in the samples' place (at most all
    of them), what a perfect sampler scores at this sample size."""
    features = pca_features(train, pca_dim)
    reference = features(images)
    return {
        "frechet": frechet_distance(features(samples), reference),
        "frechet_floor": frechet_distance(features(train[: len(samples)]), reference),
    }


def independent_pixel_frechet(
    images: torch.Tensor, train: torch.Tensor, n: int, pca_dim: int, generator
) -> float:
    """The baseline's Frechet distance to ``images``: ``n`` samples of independent
    pixels (their noise from ``generator``), as many as the model's samples, in the
    same features: a loss.baselines number."""
    features = pca_features(train, pca_dim)
    baseline = independent_pixel_samples(train, n, generator)
    return frechet_distance(features(baseline), features(images))
