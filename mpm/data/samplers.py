"""P×K identity batches: P identities with K images each, seeded and split across DDP ranks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


def _default_replicas_and_rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class PKSampler(Sampler[list[int]]):
    """A batch sampler: every batch holds ``p`` identities × ``k`` dataset indices, identity-grouped.

    Use it as ``DataLoader(dataset, batch_sampler=PKSampler(dataset.pids, p, k, seed=...))``.
    A global step holds ``p × num_replicas`` distinct identities; rank ``r`` takes the r-th
    ``p`` of them, so ranks see disjoint identities and the same number of batches.
    Each epoch the identities are shuffled and dealt out a global step at a time. Without
    ``num_batches`` the epoch is that one pass, ``num_identities // (p * num_replicas)``
    batches per rank, every identity at most once. With ``num_batches`` the epoch has that many
    batches per rank, taken from a stream of passes: when a pass runs out the identities are
    reshuffled, and a step that straddles two passes completes the old pass's rest with the
    first identities of the new pass that it does not already hold (the ones skipped come next),
    so no step holds an identity twice and every pass deals out every identity once.
    An identity with at least ``k`` images gives ``k`` distinct ones; one with fewer is sampled
    with replacement. The draw depends only on ``seed`` and the epoch (``set_epoch``), never on
    the rank, so all ranks agree on the plan. ``num_replicas`` and ``rank`` default to the
    initialised process group, else 1 and 0.
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        *,
        seed: int = 0,
        num_batches: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if p < 1 or k < 1:
            raise ValueError(f"P={p} identities and K={k} images per batch must both be at least 1")
        if num_batches is not None and num_batches < 1:
            raise ValueError(f"num_batches is {num_batches}; an epoch needs at least one batch")
        default_replicas, default_rank = _default_replicas_and_rank()
        self.num_replicas = default_replicas if num_replicas is None else num_replicas
        self.rank = default_rank if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} must lie in 0..{self.num_replicas - 1} (num_replicas)")
        indices_of: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            indices_of[int(pid)].append(index)
        self.identities = sorted(indices_of)
        self.indices_of = {pid: np.asarray(indices) for pid, indices in indices_of.items()}
        if len(self.identities) < p * self.num_replicas:
            raise ValueError(
                f"{len(self.identities)} identities cannot fill one batch of P={p} identities on "
                f"each of {self.num_replicas} rank(s); lower P or use more training identities"
            )
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.num_batches = num_batches

    @property
    def batch_size(self) -> int:
        """Images per batch: P × K."""
        return self.p * self.k

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches ``__iter__`` yields (call it before every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.num_batches is not None:
            return self.num_batches
        return len(self.identities) // (self.p * self.num_replicas)

    def _draw(self, rng: np.random.Generator, pid: int) -> list[int]:
        indices = self.indices_of[pid]
        chosen = rng.choice(indices, size=self.k, replace=len(indices) < self.k)
        return chosen.tolist()

    def _identity_steps(self, rng: np.random.Generator) -> list[list[int]]:
        """The global steps of the epoch as positions into ``identities``, from the pass stream."""
        size = self.p * self.num_replicas
        rest: list[int] = []  # what the current pass has not dealt out yet, in order
        steps = []
        for _ in range(len(self)):
            step, rest = rest[:size], rest[size:]
            if len(step) < size:
                fresh = rng.permutation(len(self.identities)).tolist()
                held = set(step)
                taken = [i for i in fresh if i not in held][: size - len(step)]
                chosen = set(taken)
                step += taken
                rest = [i for i in fresh if i not in chosen]
            steps.append(step)
        return steps

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        steps = self._identity_steps(rng)
        draws = [[self._draw(rng, self.identities[i]) for i in step] for step in steps]
        for step in draws:
            mine = step[self.rank * self.p : (self.rank + 1) * self.p]
            yield [index for draw in mine for index in draw]
