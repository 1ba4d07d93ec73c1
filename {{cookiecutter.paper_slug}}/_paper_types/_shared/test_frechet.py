def test_frechet_distance_by_hand():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(500, 3, generator=generator, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # A shift by c moves only the means: |c|^2.
    assert frechet_distance(a, a + torch.tensor([1.0, 2.0, 0.0])) == pytest.approx(5.0, rel=1e-6)
    # One dimension: (m_a - m_b)^2 + (s_a - s_b)^2. Scaling by 3 triples s.
    x = a[:, :1]
    expected = (x.mean() - 3 * x.mean()) ** 2 + (x.std() - 3 * x.std()) ** 2
    assert frechet_distance(x, 3 * x) == pytest.approx(expected.item(), rel=1e-6)
    # Two different covariances (not commuting): tr(C_a + C_b - 2 (C_a C_b)^1/2) by hand for
    # diagonal C_a = diag(1, 4) and C_b = diag(9, 1): 1 + 4 + 9 + 1 - 2 (3 + 2) = 5.
    a = torch.randn(4000, 2, generator=generator, dtype=torch.float64)
    a = (a - a.mean(0)) / a.std(0)  # unit variance, uncorrelated only approximately
    a = torch.linalg.solve(torch.linalg.cholesky(torch.cov(a.T)), a.T).T  # whitened exactly
    b = a * torch.tensor([3.0, 1.0])
    assert frechet_distance(a * torch.tensor([1.0, 2.0]), b) == pytest.approx(5.0, rel=1e-6)
