"""The results record: SQ, MQ, SQ+RR, MQ+RR with the protocol settings."""

import json

import pytest
import torch

from mpm.evaluation.distance import pairwise_distance
from mpm.evaluation.ranking import evaluate_rank
from mpm.evaluation.report import evaluate_all, format_table, mean_records

GENERATOR = torch.Generator().manual_seed(0)
CENTERS = torch.randn(12, 6, generator=GENERATOR)
Q_PIDS = torch.arange(1, 13).repeat(2)
Q_CAMS = torch.tensor([0, 1]).repeat_interleave(12)
G_PIDS = torch.arange(1, 13).repeat(4)
G_CAMS = torch.tensor([0, 1, 2, 3]).repeat_interleave(12)
QUERIES = CENTERS[Q_PIDS - 1] + 0.6 * torch.randn(24, 6, generator=GENERATOR)
GALLERY = CENTERS[G_PIDS - 1] + 0.6 * torch.randn(48, 6, generator=GENERATOR)


def test_record_has_every_mode_and_is_json_serialisable():
    record = evaluate_all(QUERIES, GALLERY, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    assert list(record["results"]) == ["SQ", "SQ+RR", "MQ", "MQ+RR"]
    assert record["protocol"]["rerank"] == {"k1": 20, "k2": 6, "lambda": 0.3}
    assert record["protocol"]["multi_query"] == {"pooling": "mean", "source": "query"}
    assert json.loads(json.dumps(record)) == record
    sq = evaluate_rank(pairwise_distance(QUERIES, GALLERY), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    assert record["results"]["SQ"]["mAP"] == sq.mean_ap
    assert record["results"]["SQ"]["R5"] == sq.cmc[4]


def test_multi_query_pool_from_gt_bbox():
    pool_pids, pool_cams = torch.cat([Q_PIDS, Q_PIDS]), torch.cat([Q_CAMS, Q_CAMS])
    pool = torch.cat([QUERIES, QUERIES + 1.0])
    record = evaluate_all(QUERIES, GALLERY, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, mq_feats=pool, mq_pids=pool_pids,
                          mq_camids=pool_cams, mq_source="gt_bbox", rerank=False)
    shifted = evaluate_rank(pairwise_distance(QUERIES + 0.5, GALLERY), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    assert record["results"]["MQ"]["mAP"] == pytest.approx(shifted.mean_ap)
    assert record["protocol"]["multi_query"]["source"] == "gt_bbox" and "SQ+RR" not in record["results"]
    with pytest.raises(ValueError, match="together"):
        evaluate_all(QUERIES, GALLERY, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, mq_feats=pool)


def test_single_shot_record_table_and_mean_over_splits():
    record = evaluate_all(QUERIES, GALLERY, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, single_shot_repeats=2, seed=1,
                          rerank=False, ap="trapezoid")
    assert record["protocol"]["name"] == "cuhk03-single-shot"
    assert record["protocol"]["single_shot"] == {"repeats": 2, "seed": 1}
    table = format_table(record).splitlines()
    assert table[0].split() == ["mode", "R1", "R5", "R10", "mAP", "mINP", "skipped"]
    assert [line.split()[0] for line in table[1:]] == ["SQ", "MQ"]
    mean = mean_records([record, record])
    assert mean["results"]["SQ"]["mAP"] == pytest.approx(record["results"]["SQ"]["mAP"])
    assert mean["protocol"]["splits"] == 2
