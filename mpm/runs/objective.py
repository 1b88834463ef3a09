"""The loss of one training step (paper eqs. (1)-(5)).

Stages 1 and 2: the part id loss (eq. 3). Stage 3: the batch holds ``[anchors; positives;
negatives]``, taken apart with ``chunk(3)``; the loss is the triplet id loss (eq. 4) plus the
local-level triplet loss on the part features H (eq. 2), or the global one on the undivided,
average-pooled last map T (eq. 1, ablation row 5), or nothing (``triplet_loss: none``).
"""

from __future__ import annotations

import torch

from mpm.losses import global_triplet_loss, local_triplet_loss, part_id_loss, triplet_id_loss
from mpm.model import MPMOutput


def batch_losses(output: MPMOutput, pids: torch.Tensor, stage_number: int, triplet_loss: str,
                 margin: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, id, triplet, accuracy) of one batch's network ``output`` with labels ``pids``."""
    logits, parts, pooled = output.logits.float(), output.parts.float(), output.pooled.float()
    accuracy = (logits.argmax(dim=-1) == pids[:, None]).float().mean()
    if stage_number != 3:
        id_loss = part_id_loss(logits, pids)  # eq. (3)
        return id_loss, id_loss, torch.zeros_like(id_loss), accuracy
    la, lp, ln = logits.chunk(3)
    ya, yp, yn = pids.chunk(3)
    ha, hp, hn = parts.chunk(3)
    id_loss = triplet_id_loss(la, lp, ln, ya, yp, yn)  # eq. (4)
    if triplet_loss == "local":
        triplet = local_triplet_loss(ha, hp, hn, margin)  # eq. (2)
    elif triplet_loss == "global":
        triplet = global_triplet_loss(*pooled.chunk(3), margin)  # eq. (1) on pooled T
    else:
        triplet = torch.zeros_like(id_loss)
    return id_loss + triplet, id_loss, triplet, accuracy  # eq. (5)
