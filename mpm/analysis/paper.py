"""The paper's reported figures, kept apart so the book always labels them as the paper's.

Zheng et al., IEEE Access 8 (2020): ResNet-50 from ImageNet, 384×128 inputs, Market-1501.
These numbers are quoted, never computed here.
"""

from __future__ import annotations

import pandas as pd

TABLE1_MARKET = {
    "(1) Baseline": (86.55, 69.07, 91.48, 77.57, 88.39, 82.50, 92.93, 88.57),
    "(2) + Mask (convolution)": (88.45, 69.87, 91.86, 77.70, 90.29, 84.56, 92.84, 88.29),
    "(3) + Mask (bilinear)": (88.66, 70.86, 93.20, 78.57, 90.56, 84.88, 93.29, 88.84),
    "(4) + Mask + MP": (89.82, 73.67, 93.29, 80.31, 92.10, 86.30, 94.21, 89.90),
    "(5) + MP + GTL": (90.59, 75.35, 94.03, 81.96, 92.73, 87.60, 94.83, 91.16),
    "(6) + MP + LTL": (92.87, 79.53, 94.83, 85.27, 94.30, 90.94, 95.72, 93.31),
    "(7) + MP + LTL + TriHard": (93.38, 80.45, 95.40, 86.47, 94.39, 91.39, 95.72, 93.76),
}
"""Table 1 of the paper: R1 / mAP (%) for SQ, MQ, SQ+RR and MQ+RR."""

BEST_THRESHOLD = {"Market-1501": "0.4", "DukeMTMC-reID": "0.5", "CUHK03 (old protocol)": "0.5-0.6",
                  "CUHK03 (new protocol)": "0.4-0.5"}
"""The best mask-pooling thresholds the paper reports (§IV-B, Fig. 7); 0.4-0.7 is its good band."""

GOOD_THRESHOLD_BAND = (0.4, 0.7)
BEST_PART_COUNT = 6


def table1() -> pd.DataFrame:
    """Table 1 as a frame with columns ``"paper <mode> R1"`` / ``"paper <mode> mAP"``."""
    columns = [f"paper {mode} {metric}" for mode in ("SQ", "MQ", "SQ+RR", "MQ+RR") for metric in ("R1", "mAP")]
    return pd.DataFrame.from_dict(TABLE1_MARKET, orient="index", columns=columns)


ABLATION_TABLES = {"Market-1501": "Table 1", "DukeMTMC-reID": "Table 2", "CUHK03": "Table 3"}
"""The paper's ablation table of each dataset; only Table 1's numbers are held here (`TABLE1_MARKET`)."""

HEADLINE_RESULTS = {
    "Market-1501": (95.72, 93.76),
    "DukeMTMC-reID": (87.12, 82.69),
    "CUHK03 labeled (original protocol)": (97.50, 97.36),
    "CUHK03 detected (original protocol)": (96.98, 95.67),
    "CUHK03 labeled (new protocol)": (75.64, 76.30),
    "CUHK03 detected (new protocol)": (71.79, 72.32),
}
"""Rank-1 / mAP (%) of the full model as §IV-D's text reports them. The query mode is not stated;
on Market-1501 the pair is Table 1's row (7) in MQ+RR."""
