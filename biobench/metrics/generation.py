"""Generation metrics in a feature space (a Recognizer's embeddings: no Inception weights offline): the Fréchet
distance and Kynkäänniemi et al.'s k-NN manifold precision / recall, float64; and how much one latent factor fixes
a feature (:func:`shared_factor_ratio`, FPGAN-Control's appearance disentanglement)."""

from __future__ import annotations

import torch


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` of two feature sets ``[N, D]`` (float64,
    unbiased covariances). The trace term is taken as ``sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2)))`` by symmetric
    eigendecompositions, so it stays real and finite when ``N < D`` makes the covariances singular."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"The Fréchet distance needs >= 2 samples per set, got {len(a)} and {len(b)}.")
    a, b = a.double().flatten(1), b.double().flatten(1)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))
    vals, vecs = torch.linalg.eigh(cov_a)
    sqrt_a = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
    inner = sqrt_a @ cov_b @ sqrt_a
    cross = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    return (a.mean(0) - b.mean(0)).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of every row of ``x`` to its ``k``-th nearest other row."""
    return torch.cdist(x, x).kthvalue(k + 1, dim=1).values  # the row itself is its nearest (distance 0)


def knn_precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al.'s manifold precision (share of fakes inside some real's k-NN ball) and recall (share of
    reals inside some fake's k-NN ball), Euclidean, float64."""
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"k-NN precision / recall with k={k} needs > {k} samples per set, got {len(real)} real "
                         f"and {len(fake)} generated.")  # fmt: skip
    real, fake = real.double(), fake.double()
    d = torch.cdist(fake, real)
    precision = (d <= knn_radii(real, k)[None, :]).any(dim=1).double().mean()
    recall = (d <= knn_radii(fake, k)[:, None]).any(dim=0).double().mean()
    return float(precision), float(recall)


def shared_factor_ratio(features: torch.Tensor, shared: torch.Tensor, other: torch.Tensor) -> float:
    """Mean squared distance of the sample pairs that share the ``shared`` factor (and differ in ``other``) over
    that of the pairs that share neither, float64: 0 = the shared factor alone fixes the features, ~1 = it does not
    matter. ``features [N, ...]``, ``shared`` / ``other`` ``[N]`` integer labels (e.g. appearance and identity
    latents)."""
    shared, other = torch.as_tensor(shared), torch.as_tensor(other)
    if not len(features) == len(shared) == len(other):
        raise ValueError(f"shared_factor_ratio: {len(features)} features, {len(shared)} / {len(other)} labels.")
    d = torch.cdist(features.double().flatten(1), features.double().flatten(1)).square()
    apart = other[:, None] != other[None, :]
    same = (shared[:, None] == shared[None, :]) & apart
    neither = (shared[:, None] != shared[None, :]) & apart
    if not same.any() or not neither.any():
        raise ValueError("shared_factor_ratio needs pairs that share the factor and pairs that share nothing.")
    return float(d[same].mean() / d[neither].mean())
