"""Chunked pairwise distances."""

import pytest
import torch

from mpm.evaluation.distance import pairwise_distance

X = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
Y = torch.tensor([[0.0, 0.0], [6.0, 8.0], [3.0, 0.0]])


def test_euclidean_and_squared_by_hand():
    expected = torch.tensor([[0.0, 10.0, 3.0], [5.0, 5.0, 4.0]])
    torch.testing.assert_close(pairwise_distance(X, Y, "euclidean"), expected)
    torch.testing.assert_close(pairwise_distance(X, Y, "sqeuclidean"), expected**2)


def test_cosine_by_hand():
    distances = pairwise_distance(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0], [3.0, 0.0], [-1.0, 0.0]]),
                                  "cosine")
    torch.testing.assert_close(distances, torch.tensor([[1.0, 0.0, 2.0]]))


def test_chunks_do_not_change_the_result():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(37, 5, generator=generator), torch.randn(11, 5, generator=generator)
    torch.testing.assert_close(pairwise_distance(x, y, chunk_size=4), pairwise_distance(x, y, chunk_size=1000),
                               rtol=1e-6, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown distance metric 'manhattan'"):
        pairwise_distance(X, Y, "manhattan")
    with pytest.raises(ValueError, match="feature dimensions differ"):
        pairwise_distance(X, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="chunk_size"):
        pairwise_distance(X, Y, chunk_size=0)
