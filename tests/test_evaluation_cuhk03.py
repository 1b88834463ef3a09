"""CUHK03 classic single-shot sampling and scores, and the new protocol."""

import numpy as np
import pytest

from mpm.evaluation.cuhk03 import (
    evaluate_classic,
    evaluate_new_protocol,
    evaluate_single_shot,
    sample_single_shot_gallery,
)

# two cameras; identities 1..3 with two gallery images each in camera 1, one in camera 0
G_PIDS = np.array([1, 1, 2, 2, 3, 3, 1])
G_CAMS = np.array([1, 1, 1, 1, 1, 1, 0])
Q_PIDS = np.array([1, 2, 3])
Q_CAMS = np.array([0, 0, 0])


def test_one_image_per_identity_and_never_the_query_camera():
    mask = sample_single_shot_gallery(Q_PIDS, Q_CAMS, G_PIDS, G_CAMS, np.random.default_rng(0))
    for row, query_pid in zip(mask, Q_PIDS):
        chosen = G_PIDS[row]
        assert sorted(chosen) == [1, 2, 3]
    assert not mask[0, 6]  # same identity, same camera as query 0


def test_sampling_is_reproducible_from_the_seed():
    def draw(seed):
        return sample_single_shot_gallery(Q_PIDS, Q_CAMS, G_PIDS, G_CAMS, np.random.default_rng(seed))
    assert np.array_equal(draw(5), draw(5))
    assert any(not np.array_equal(draw(5), draw(seed)) for seed in range(6, 12))
    first = evaluate_single_shot(np.random.default_rng(1).random((3, 7)), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS,
                                 repeats=4, seed=9)
    again = evaluate_single_shot(np.random.default_rng(1).random((3, 7)), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS,
                                 repeats=4, seed=9)
    np.testing.assert_array_equal(first.cmc, again.cmc)


def test_single_shot_scores_by_hand():
    # query 1's own images are nearest; the others have their two own images at mixed ranks
    distmat = np.array([
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0],
        [0.1, 0.2, 0.15, 0.9, 0.5, 0.6, 0.0],
        [0.1, 0.2, 0.3, 0.4, 0.05, 0.6, 0.0],
    ])
    result = evaluate_single_shot(distmat, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, repeats=200, seed=0, max_rank=3)
    # query 0 (g6 excluded): always rank 1. query 1: rank 1 needs g2 (1/2) and g1 for identity 1 (1/3);
    # query 2: rank 1 needs g4 (1/2) and not g6 for identity 1 (2/3). Expectation (1 + 1/6 + 1/3) / 3
    assert result.cmc[0] == pytest.approx(0.5, abs=0.05)
    assert result.cmc[2] == 1.0
    assert result.num_skipped == 0


def test_with_one_image_per_identity_single_shot_equals_the_market_protocol():
    distmat = np.array([[0.3, 0.1, 0.2], [0.3, 0.1, 0.2]])
    args = (distmat, [1, 2], [1, 2, 3], [0, 0], [1, 1, 1])
    single = evaluate_single_shot(*args, repeats=3, seed=0, max_rank=3)
    np.testing.assert_allclose(single.cmc, [0.5, 0.5, 1.0])
    assert single.mean_ap == pytest.approx((1 / 3 + 1) / 2)
    assert single.mean_ap == evaluate_new_protocol(*args, max_rank=3).mean_ap


def test_classic_is_the_mean_over_splits_and_reproducible():
    rng = np.random.default_rng(2)
    splits = [(rng.random((3, 7)), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS) for _ in range(3)]
    first = evaluate_classic(splits, repeats=3, seed=4)
    assert np.array_equal(first.cmc, evaluate_classic(splits, repeats=3, seed=4).cmc)
    streams = np.random.SeedSequence(4).spawn(3)
    per_split = [evaluate_single_shot(*split, repeats=3, seed=int(stream.generate_state(1)[0]))
                 for split, stream in zip(splits, streams)]
    np.testing.assert_allclose(first.cmc, np.mean([r.cmc for r in per_split], axis=0))
    with pytest.raises(ValueError, match="at least one split"):
        evaluate_classic([])


def test_new_protocol_is_the_market_protocol_with_identity_zero_allowed():
    result = evaluate_new_protocol(np.array([[0.2, 0.1]]), [0], [0, 3], [0], [1, 1], max_rank=2)
    np.testing.assert_allclose(result.cmc, [0, 1])
    assert result.mean_ap == pytest.approx(0.5)
