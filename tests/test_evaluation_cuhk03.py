"""CUHK03 classic cross-view single-shot sampling and scores (Li et al. 2014), and the new protocol."""

import numpy as np
import pytest

from mpm.evaluation.cuhk03 import (
    evaluate_classic,
    evaluate_new_protocol,
    evaluate_single_shot,
    sample_single_shot_gallery,
)
from mpm.evaluation.ranking import evaluate_rank

# two cameras; identities 1..3 with two gallery images each in camera 1, one in camera 0
G_PIDS = np.array([1, 1, 2, 2, 3, 3, 1])
G_CAMS = np.array([1, 1, 1, 1, 1, 1, 0])
Q_PIDS = np.array([1, 2, 3])
Q_CAMS = np.array([0, 0, 0])


def test_one_image_per_identity_and_never_the_query_camera():
    mask = sample_single_shot_gallery(Q_PIDS, Q_CAMS, G_PIDS, G_CAMS, np.random.default_rng(0))
    for row in mask:
        assert sorted(G_PIDS[row]) == [1, 2, 3]
    assert not mask[:, 6].any()  # g6 is in camera 0, every query's camera


def _cross_view_split():
    """Three camera pairs (cameras 2p, 2p + 1); identity i lives in pair i % 3 with a varying number
    of images per view; identity 9 is seen by camera 0 only; identity -1 is junk in several cameras."""
    pids, cams = [], []
    for pid in range(9):
        pair = pid % 3
        for view, count in ((0, 1 + pid % 4), (1, 1 + (pid + 2) % 3)):
            pids += [pid] * count
            cams += [2 * pair + view] * count
    pids += [9, 9, -1, -1, -1]
    cams += [0, 0, 1, 2, 5]
    return np.array(pids), np.array(cams)


def test_every_sampled_gallery_is_one_image_per_identity_from_the_other_camera():
    g_pids, g_cams = _cross_view_split()
    keep = g_pids != -1
    q_pids, q_cams = g_pids[keep], g_cams[keep]  # classic protocol: query and gallery are the test images
    rng = np.random.default_rng(3)
    for _ in range(25):
        mask = sample_single_shot_gallery(q_pids, q_cams, g_pids, g_cams, rng)
        for row, q_cam in zip(mask, q_cams):
            expected = sorted({int(p) for p, c in zip(g_pids, g_cams) if p != -1 and c != q_cam})
            chosen = g_pids[row]
            assert sorted(chosen.tolist()) == expected  # one image of each identity seen outside q_cam
            assert not (g_cams[row] == q_cam).any()
            assert not (chosen == -1).any()
    # identity 9 (camera 0 only) is absent exactly for the camera-0 queries
    assert not mask[q_cams == 0][:, g_pids == 9].any()
    assert (mask[q_cams != 0][:, g_pids == 9].sum(1) == 1).all()


def test_each_identity_is_drawn_uniformly_among_its_other_camera_images():
    # query in camera 0; identity 2 has one image in camera 0 (never drawn) and three in camera 1
    g_pids, g_cams = np.array([2, 2, 2, 2, 1]), np.array([0, 1, 1, 1, 1])
    queries = 30000  # identical queries, one independent draw each (standard error of a share: 0.0027)
    masks = sample_single_shot_gallery(np.ones(queries, int), np.zeros(queries, int), g_pids, g_cams,
                                       np.random.default_rng(0))
    counts = masks.sum(0)
    assert counts[0] == 0 and counts[4] == queries
    assert counts[1:4].sum() == queries
    np.testing.assert_allclose(counts[1:4] / queries, 1 / 3, atol=0.015)


def test_same_view_candidates_are_excluded_so_rank_one_is_the_cross_view_answer():
    # one camera pair (cameras 0, 1); query 0 is identity 1 in camera 0, query 1 identity 2 in camera 1
    g_pids = np.array([1, 2, 2, 3, -1, 1])
    g_cams = np.array([1, 0, 1, 0, 1, 0])
    q_pids, q_cams = np.array([1, 2]), np.array([0, 1])
    distmat = np.array([
        # query 0: its match g0 is at 0.3; identities 2 and 3 have near images (g1, g3) in camera 0 only
        [0.3, 0.1, 0.5, 0.2, 0.0, 0.05],
        # query 1: its match g1 is at 0.4; identity 1's near image g0 is in camera 1, the query's
        [0.05, 0.4, 0.0, 0.6, 0.0, 0.5],
    ])
    for seed in range(5):
        mask = sample_single_shot_gallery(q_pids, q_cams, g_pids, g_cams, np.random.default_rng(seed))
        np.testing.assert_array_equal(mask, [[1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 1]])
    result = evaluate_single_shot(distmat, q_pids, g_pids, q_cams, g_cams, repeats=4, seed=0, max_rank=3)
    np.testing.assert_array_equal(result.cmc, [1.0, 1.0, 1.0])
    assert result.mean_ap == 1.0 and result.num_skipped == 0
    np.testing.assert_array_equal(result.first_rank, [1, 1, 1, 1, 1, 1, 1, 1])
    # with the same-view images in the gallery, neither query's match would be at rank 1
    same_view = evaluate_new_protocol(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=3)
    np.testing.assert_array_equal(same_view.first_rank, [3, 2])
    # one same-view distractor alone already costs Rank-1: g1 (identity 2, camera 0) for query 0
    one_more = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=3, distractor_pid=None,
                             gallery_mask=np.array([[1, 1, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1]], dtype=bool))
    np.testing.assert_array_equal(one_more.first_rank, [2, 1])


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
    # g6 is in camera 0, the queries' camera, so it is never drawn. query 0: always rank 1.
    # query 1: rank 1 needs g2 (1/2) and g1 for identity 1 (1/2); query 2: rank 1 needs g4 (1/2).
    # Per gallery drawn, Rank-1 = (1 + [g1 and g2 drawn for query 1] + [g4 drawn for query 2]) / 3.
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):
        mask = sample_single_shot_gallery(Q_PIDS, Q_CAMS, G_PIDS, G_CAMS, rng)
        hits.append((1 + (mask[1, 1] and mask[1, 2]) + mask[2, 4]) / 3)
    assert result.cmc[0] == pytest.approx(np.mean(hits), abs=1e-12)
    assert result.cmc[0] == pytest.approx((1 + 1 / 4 + 1 / 2) / 3, abs=0.05)  # expectation 7/12
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
