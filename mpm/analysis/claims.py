"""The paper's claims the studies test, as pairs of settings: which setting the paper says scores
higher than which, in which reading of mask pooling."""

from __future__ import annotations

ABLATION_CLAIMS = (
    ("text", "(1) < (2)", "(2) + Mask (convolution)", "(1) Baseline"),
    ("text", "(2) < (3)", "(3) + Mask (bilinear)", "(2) + Mask (convolution)"),
    ("text", "(3) < (4)", "(4) + Mask + MP", "(3) + Mask (bilinear)"),
    ("text", "(4) < (5)", "(5) + MP + GTL", "(4) + Mask + MP"),
    ("text", "(5) < (6)", "(6) + MP + LTL", "(5) + MP + GTL"),
    ("text", "(6) < (7)", "(7) + MP + LTL + TriHard", "(6) + MP + LTL"),
    ("text", "(2) < (4)", "(4) + Mask + MP", "(2) + Mask (convolution)"),
    ("text", "(1) < (7)", "(7) + MP + LTL + TriHard", "(1) Baseline"),
    ("gated", "(3) < (4)", "(4) + Mask + MP + gate", "(3) + Mask (bilinear) + gate"),
    ("gated", "(4) < (5)", "(5) + MP + GTL + gate", "(4) + Mask + MP + gate"),
    ("gated", "(5) < (6)", "(6) + MP + LTL + gate", "(5) + MP + GTL + gate"),
    ("gated", "(6) < (7)", "(7) + MP + LTL + TriHard + gate", "(6) + MP + LTL + gate"),
    ("gated", "(2) < (4)", "(4) + Mask + MP + gate", "(2) + Mask (convolution)"),
    ("gated", "(1) < (7)", "(7) + MP + LTL + TriHard + gate", "(1) Baseline"),
)
"""The orderings Table 1 implies, as (reading, claim, the row it says is better, the other row):
each step of the table, row (2) against row (4) explicitly, and the whole table (1) < (7); in the
text reading and again with rows (3)-(7) gated."""

CONV_GATE_CLAIMS = (
    ("gated", "(2) < (2) + gate", "(2) + Mask (convolution) + gate", "(2) + Mask (convolution)"),
    ("gated", "(4) + gate < (2) + gate", "(2) + Mask (convolution) + gate", "(4) + Mask + MP + gate"),
)
"""The convolved mask with the gate (study ``conv-gate``), as (reading, claim, the row said to be
better, the other row): does the gate add to the convolved channel, and does the convolved mask
still beat mask pooling when both are gated. Not the paper's claims: no step, the margin is 1 point."""

LEARNED_THRESHOLD_CLAIMS = (
    ("text", "learned threshold ≥ best fixed − δ", "learned threshold"),
    ("gated", "learned threshold ≥ best fixed − δ", "learned threshold + gate"),
)
"""The learned threshold (study ``learned-threshold``) against the best stored fixed threshold of its
reading, chosen from the sweep's runs, as (reading, claim, the learned setting): not worse by more
than the margin of 1 point (`mpm.analysis.statistics.compare_not_worse`)."""
