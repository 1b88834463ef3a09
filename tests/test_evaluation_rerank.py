"""Sparse k-reciprocal re-ranking against the loop-by-loop transcription in reference_rerank.py."""

import numpy as np
import pytest
import torch

from mpm.evaluation.distance import pairwise_distance
from mpm.evaluation.rerank import k_reciprocal_rerank
from reference_rerank import reference_rerank


def _clustered_points(seed: int, num_points: int = 240, num_query: int = 70, dim: int = 12):
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(25, dim, generator=generator)
    identities = torch.randint(0, 25, (num_points,), generator=generator)
    points = centers[identities] + 0.7 * torch.randn(num_points, dim, generator=generator)
    return points[:num_query], points[num_query:]


def _reference(queries, gallery, metric, **settings):
    def distances(a, b):
        return pairwise_distance(a, b, metric).double().numpy()
    return reference_rerank(distances(queries, gallery), distances(queries, queries), distances(gallery, gallery),
                            **settings)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_equals_the_transcription_with_the_paper_settings(metric):
    queries, gallery = _clustered_points(0)
    ours = k_reciprocal_rerank(queries, gallery, metric=metric, block_size=64)
    reference = _reference(queries, gallery, metric, k1=20, k2=6, lambda_value=0.3)
    assert ours.shape == (70, 170)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("k1, k2, lambda_value", [(7, 1, 0.5), (5, 3, 0.0), (11, 4, 1.0)])
def test_equals_the_transcription_with_other_settings(k1, k2, lambda_value):
    queries, gallery = _clustered_points(1, num_points=200, num_query=50)
    ours = k_reciprocal_rerank(queries, gallery, k1=k1, k2=k2, lambda_value=lambda_value, block_size=33)
    reference = _reference(queries, gallery, "euclidean", k1=k1, k2=k2, lambda_value=lambda_value)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-5, rtol=0)


def test_block_size_does_not_change_the_result():
    queries, gallery = _clustered_points(2)
    small = k_reciprocal_rerank(queries, gallery, block_size=16)
    large = k_reciprocal_rerank(queries, gallery, block_size=4096)
    torch.testing.assert_close(small, large, atol=1e-6, rtol=0)


def test_bad_settings_raise():
    queries, gallery = _clustered_points(3, num_points=40, num_query=10)
    with pytest.raises(ValueError, match="k2=30"):
        k_reciprocal_rerank(queries, gallery, k1=20, k2=30)
    with pytest.raises(ValueError, match="lambda_value must lie in"):
        k_reciprocal_rerank(queries, gallery, lambda_value=1.5)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        k_reciprocal_rerank(queries, gallery[:, :5])
