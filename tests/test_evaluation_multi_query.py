"""Multi-query pooling over the images of the query's identity in the query's camera."""

import pytest
import torch

from mpm.evaluation.multi_query import pool_multi_query

POOL = torch.tensor([[1.0, 4.0], [3.0, 2.0], [10.0, 10.0], [5.0, 0.0], [7.0, 7.0]])
POOL_PIDS = [1, 1, 1, 2, 1]
POOL_CAMS = [0, 0, 1, 0, 0]


def test_mean_pooling_by_hand():
    pooled = pool_multi_query([1, 2, 1], [0, 0, 1], POOL, POOL_PIDS, POOL_CAMS)
    torch.testing.assert_close(pooled, torch.tensor([[11 / 3, 13 / 3], [5.0, 0.0], [10.0, 10.0]]))


def test_max_pooling_by_hand():
    pooled = pool_multi_query(torch.tensor([1]), torch.tensor([0]), POOL, POOL_PIDS, POOL_CAMS, pooling="max")
    torch.testing.assert_close(pooled, torch.tensor([[7.0, 7.0]]))


def test_a_query_missing_from_the_pool_is_an_error():
    with pytest.raises(ValueError, match="pid 2, camid 1"):
        pool_multi_query([1, 2], [0, 1], POOL, POOL_PIDS, POOL_CAMS)
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        pool_multi_query([1], [0], POOL, POOL_PIDS, POOL_CAMS, pooling="median")
