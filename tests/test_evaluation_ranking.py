"""The Market-1501 protocol on hand-built distance matrices with hand-computed scores."""

import numpy as np
import pytest
import torch

from mpm.evaluation.ranking import evaluate_rank, mean_rank_results

# gallery: identity and camera of each item (-1 junk, 0 distractor)
G_PIDS = np.array([1, 1, 2, -1, 0, 1, 3, 2])
G_CAMS = np.array([0, 1, 1, 1, 2, 2, 0, 2])
Q_PIDS = np.array([1, 2, 3, 2])
Q_CAMS = np.array([0, 0, 0, 1])
DISTMAT = np.array([
    # q0: g0 same id+cam (excluded), g3 junk; valid order g4 g1* g2 g6 g5* g7 -> matches at 2, 5
    [0.1, 0.4, 0.5, 0.2, 0.3, 0.7, 0.6, 0.8],
    # q1: matches g2, g7 first -> ranks 1, 2
    [0.3, 0.4, 0.1, 0.5, 0.6, 0.7, 0.8, 0.2],
    # q2: its only gallery image (g6) is in its own camera -> skipped
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    # q3: g2 same id+cam (excluded), g3 junk; valid order g0 g1 g4 g5 g6 g7* -> match at 6
    [0.1, 0.2, 0.05, 0.15, 0.3, 0.4, 0.5, 0.6],
])


def test_hand_built_scores():
    result = evaluate_rank(DISTMAT, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=8)
    np.testing.assert_allclose(result.cmc, [1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(result.ap[[0, 1, 3]], [(1 / 2 + 2 / 5) / 2, 1.0, 1 / 6])
    assert np.isnan(result.ap[2])
    assert result.mean_ap == pytest.approx((0.45 + 1 + 1 / 6) / 3)
    # Market devkit trapezoids: q0 (0 + 1/2)/2 and (1/4 + 2/5)/2; q3 (0 + 1/6)/2
    np.testing.assert_allclose(result.ap_trapezoid[[0, 1, 3]], [(0.25 + 0.325) / 2, 1.0, 1 / 12])
    assert result.mean_ap_trapezoid == pytest.approx((0.2875 + 1 + 1 / 12) / 3)
    np.testing.assert_allclose(result.inp[[0, 1, 3]], [2 / 5, 1.0, 1 / 6])
    assert result.mean_inp == pytest.approx((0.4 + 1 + 1 / 6) / 3)
    assert (result.num_queries, result.num_skipped) == (4, 1)
    assert result.mean_ap_of("trapezoid") == result.mean_ap_trapezoid


def test_chunking_and_torch_input_give_the_same_scores():
    whole = evaluate_rank(DISTMAT, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=8)
    chunked = evaluate_rank(torch.from_numpy(DISTMAT), torch.from_numpy(Q_PIDS), G_PIDS, Q_CAMS, G_CAMS,
                            max_rank=8, chunk_size=1)
    np.testing.assert_array_equal(whole.cmc, chunked.cmc)
    assert (whole.mean_ap, whole.mean_inp) == (chunked.mean_ap, chunked.mean_inp)


def test_distractor_query_has_no_match_and_distractors_are_negatives():
    result = evaluate_rank(np.array([[0.1, 0.2, 0.3]]), np.array([5]), np.array([0, 5, 0]), np.array([0]),
                           np.array([1, 1, 1]), max_rank=3)
    np.testing.assert_allclose(result.cmc, [0, 1, 1])
    assert result.mean_ap == pytest.approx(0.5)
    skipped = evaluate_rank(np.array([[0.1, 0.2], [0.2, 0.1]]), np.array([0, 5]), np.array([0, 5]),
                            np.array([0, 0]), np.array([1, 1]), max_rank=2)
    assert skipped.num_skipped == 1 and skipped.mean_ap == 1.0


def test_a_negative_tied_with_a_match_ranks_first():
    result = evaluate_rank(np.array([[0.5, 0.5, 0.9]]), np.array([1]), np.array([2, 1, 1]), np.array([0]),
                           np.array([1, 1, 1]), max_rank=3)
    np.testing.assert_allclose(result.ap, [(1 / 2 + 2 / 3) / 2])


def test_gallery_mask_restricts_each_query():
    mask = np.array([[True, False, True]])
    result = evaluate_rank(np.array([[0.1, 0.2, 0.3]]), np.array([1]), np.array([2, 2, 1]), np.array([0]),
                           np.array([1, 1, 1]), max_rank=2, gallery_mask=mask)
    np.testing.assert_allclose(result.cmc, [0, 1])


def _loop_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank):
    """Per-query sorting, as the usual toolkits do (no junk in these inputs)."""
    cmcs, aps = [], []
    for i in range(len(distmat)):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
        hits = (g_pids[order] == q_pids[i])[keep]
        if not hits.any():
            continue
        cmcs.append(np.minimum(hits.cumsum(), 1)[:max_rank])
        positions = np.flatnonzero(hits) + 1
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    return np.mean(cmcs, axis=0), np.mean(aps)


def test_agrees_with_a_per_query_loop_on_random_inputs():
    rng = np.random.default_rng(3)
    q_pids, g_pids = rng.integers(1, 30, 120), rng.integers(1, 30, 700)
    q_cams, g_cams = rng.integers(0, 4, 120), rng.integers(0, 4, 700)
    distmat = rng.random((120, 700)) - 0.3 * (q_pids[:, None] == g_pids[None, :])
    cmc, mean_ap = _loop_reference(distmat, q_pids, g_pids, q_cams, g_cams, 50)
    result = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, chunk_size=17)
    np.testing.assert_allclose(result.cmc, cmc, atol=1e-12)
    assert result.mean_ap == pytest.approx(mean_ap, abs=1e-12)


def test_mean_of_results():
    first = evaluate_rank(DISTMAT, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=8)
    mean = mean_rank_results([first, first])
    np.testing.assert_allclose(mean.cmc, first.cmc)
    assert mean.mean_ap == pytest.approx(first.mean_ap) and len(mean.ap) == 8


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="none of the 1 queries"):
        evaluate_rank(np.array([[0.1]]), [1], [2], [0], [1])
    with pytest.raises(ValueError, match="g_pids must have shape"):
        evaluate_rank(np.array([[0.1, 0.2]]), [1], [1], [0], [1, 1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        evaluate_rank(np.array([[np.nan, 0.2]]), [1], [1, 1], [0], [1, 1])
    with pytest.raises(ValueError, match="unknown AP kind"):
        evaluate_rank(DISTMAT, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS).mean_ap_of("interpolated")


def test_top_ranked_skips_junk_and_same_camera_matches_and_breaks_ties_by_index():
    from mpm.evaluation.ranking import top_ranked

    distmat = np.array([[0.5, 0.1, 0.3, 0.3, 0.2]])
    g_pids = np.array([2, 1, 3, 4, -1])   # item 1: the query's identity in its camera; item 4: junk
    g_camids = np.array([1, 0, 1, 1, 1])
    top = top_ranked(distmat, np.array([1]), g_pids, np.array([0]), g_camids, top=4)
    assert top.tolist() == [[2, 3, 0, -1]]
