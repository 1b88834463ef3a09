"""Batch-Hard (Hermans et al. 2017) as stage 3 runs it: P×K steps, mined inside each step."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from mpm.config import profile
from mpm.data import load_dataset
from mpm.model import MPMOutput
from mpm.runs import trainer
from mpm.runs.batches import (
    BATCH_HARD_K,
    batch_hard_batches,
    epoch_permutation,
    global_batches,
    hardest_triplets,
    select_triplets,
)
from mpm.runs.runtime import Runtime
from tiny_benchmark import write_tiny_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = Runtime(torch.device("cpu"))
TINY_PIDS = [i // 9 for i in range(72)]  # the tiny benchmark's training set: 8 identities × 9 images
CPU_PROFILE_PIDS = [i % 150 for i in range(1961)]  # the default benchmark: 1,961 images, 150 identities


# --- the selection inside a step ------------------------------------------------------------
# Seven images, two parts of one dimension each, so the retrieval feature H concatenated is the
# point (part 1, part 2):
#   index     0      1      2      3      4      5      6
#   identity  0      0      0      1      1      2      2
#   feature (0,0)  (0,2)  (0,7)  (0,3)  (0,9)  (4,3)  (0,5)
#   a=0: same {1:2, 2:7} -> 2;    other {3:3, 4:9, 5:5, 6:5} -> 3
#   a=1: same {0:2, 2:5} -> 2;    other {3:1, 4:7, 5:√17, 6:3} -> 3
#   a=2: same {0:7, 1:5} -> 0;    other {3:4, 4:2, 5:√32, 6:2} -> tie 4/6 -> 4
#   a=3: same {4:6} -> 4;         other {0:3, 1:1, 2:4, 5:4, 6:2} -> 1 (part 2 alone would give 5)
#   a=4: same {3:6} -> 3;         other {0:9, 1:7, 2:2, 5:√52, 6:4} -> 2
#   a=5: same {6:√20} -> 6;       other {0:5, 1:√17, 2:√32, 3:4, 4:√52} -> 3
#   a=6: same {5:√20} -> 5;       other {0:5, 1:3, 2:2, 3:2, 4:4} -> tie 2/3 -> 2
HAND_FEATURES = torch.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, 7.0], [0.0, 3.0], [0.0, 9.0], [4.0, 3.0], [0.0, 5.0]])
HAND_PIDS = torch.tensor([0, 0, 0, 1, 1, 2, 2])
HAND_POSITIVES = [2, 2, 0, 4, 3, 6, 5]
HAND_NEGATIVES = [3, 3, 4, 1, 2, 3, 2]


def hand_output() -> MPMOutput:
    """The hand-built step as network outputs: logits and pooled carry the image index."""
    index = torch.arange(7, dtype=torch.float32)
    parts = HAND_FEATURES[:, :, None].clone().requires_grad_(True)
    return MPMOutput(parts=parts, logits=index[:, None, None].expand(7, 2, 3).clone(),
                     pooled=index[:, None].expand(7, 4).clone())


def test_hardest_triplets_on_a_hand_built_step() -> None:
    output = hand_output()
    triplets, labels = hardest_triplets(output, HAND_PIDS)
    expected = list(range(7)) + HAND_POSITIVES + HAND_NEGATIVES
    assert triplets.logits[:, 0, 0].long().tolist() == expected
    assert triplets.pooled[:, 0].long().tolist() == expected
    assert torch.equal(triplets.parts, output.parts[expected])
    assert labels.tolist() == HAND_PIDS[expected].tolist()
    assert triplets.global_parts is None


def test_the_loss_gradient_reaches_the_step_outputs_through_the_selected_rows() -> None:
    output = hand_output()
    triplets, _ = hardest_triplets(output, HAND_PIDS)
    triplets.parts.sum().backward()
    uses = Counter(range(7)) + Counter(HAND_POSITIVES) + Counter(HAND_NEGATIVES)
    assert output.parts.grad[:, 0, 0].tolist() == [float(uses[i]) for i in range(7)]


def test_non_finite_features_leave_the_divergence_to_the_loss_guard() -> None:
    output = hand_output()
    output.parts.data[2, 1, 0] = float("nan")
    triplets, labels = hardest_triplets(output, HAND_PIDS)
    assert triplets.parts.shape == (21, 2, 1) and labels.shape == (21,)
    assert torch.isnan(triplets.parts).any()


# --- the steps of an epoch --------------------------------------------------------------------
def identities_of(step: list[int], pids: list[int]) -> list[int]:
    """The identity of each group of K consecutive images, checking the group is one identity."""
    groups = [step[i:i + BATCH_HARD_K] for i in range(0, len(step), BATCH_HARD_K)]
    assert all(len({pids[j] for j in group}) == 1 for group in groups)
    return [pids[group[0]] for group in groups]


def test_the_cpu_profile_epoch_has_61_steps_of_24_identities_times_4_images() -> None:
    batch_size = profile("cpu").stage3.batch_size
    steps = batch_hard_batches(CPU_PROFILE_PIDS, batch_size, 0, 0, CPU)
    others = global_batches(epoch_permutation(1961, 0, 3, 0), batch_size)
    assert (BATCH_HARD_K, batch_size) == (4, 32)
    assert len(steps) == len(others) == 1961 // 32 == 61
    for step in steps:
        assert len(step) == 3 * batch_size == 96
        identities = identities_of(step, CPU_PROFILE_PIDS)
        assert len(identities) == len(set(identities)) == 24
        assert all(len(set(step[i:i + 4])) == 4 for i in range(0, 96, 4))  # 13+ images: K distinct


def test_identities_are_drawn_without_replacement_within_a_step_from_a_reshuffled_stream() -> None:
    steps = batch_hard_batches(TINY_PIDS, 8, 0, 0, CPU)
    assert len(steps) == 72 // 8 == 9
    identities = [identities_of(step, TINY_PIDS) for step in steps]
    assert all(len(step) == 6 and len(set(step)) == 6 for step in identities)
    stream = [pid for step in identities for pid in step]
    # 6 identities a step, passes of 8: after 4 steps, 3 whole passes, every identity 3 times.
    assert Counter(stream[:24]) == {pid: 3 for pid in range(8)}
    assert Counter(stream[24:48]) == {pid: 3 for pid in range(8)}


def test_an_identity_with_fewer_than_k_images_is_sampled_with_repetition() -> None:
    pids = [0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    for step in batch_hard_batches(pids, 4, 0, 0, CPU):
        for start in range(0, 12, 4):
            group = step[start:start + 4]
            if pids[group[0]] == 0:
                assert set(group) <= {0, 1}
            else:
                assert len(set(group)) == 4


def test_the_steps_follow_seed_and_epoch() -> None:
    first = batch_hard_batches(TINY_PIDS, 8, 3, 1, CPU)
    assert first == batch_hard_batches(TINY_PIDS, 8, 3, 1, CPU)
    assert first != batch_hard_batches(TINY_PIDS, 8, 3, 2, CPU)
    assert first != batch_hard_batches(TINY_PIDS, 8, 4, 1, CPU)


def test_ranks_share_out_the_identities_of_each_step() -> None:
    single = batch_hard_batches(CPU_PROFILE_PIDS, 32, 0, 0, CPU)
    ranks = [batch_hard_batches(CPU_PROFILE_PIDS, 32, 0, 0, Runtime(torch.device("cpu"), rank, 2))
             for rank in range(2)]
    assert [len(steps) for steps in ranks] == [61, 61]
    for step, (mine, theirs) in enumerate(zip(*ranks)):
        assert len(mine) == len(theirs) == 48
        assert mine + theirs == single[step]
        assert set(identities_of(mine, CPU_PROFILE_PIDS)).isdisjoint(identities_of(theirs, CPU_PROFILE_PIDS))


@pytest.mark.parametrize(
    ("batch_size", "world_size", "message"),
    [
        (30, 1, "90 is not divisible by 4; use a stage3.batch_size divisible by 4"),
        (32, 5, "P = 24 identities are split across 5 processes, but 24 is not divisible by 5"),
        (32, 24, "each of the 24 processes gets 1 of a Batch-Hard step's P = 24 identities"),
    ],
)
def test_impossible_step_shapes_are_refused(batch_size: int, world_size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        batch_hard_batches(CPU_PROFILE_PIDS, batch_size, 0, 0, Runtime(torch.device("cpu"), 0, world_size))


def test_batch_hard_is_not_an_offline_selector() -> None:
    with pytest.raises(ValueError, match="batch-hard mines inside each step"):
        select_triplets("batch-hard", torch.zeros(4, 2), torch.tensor([0, 0, 1, 1]), torch.arange(4), None,
                        torch.Generator())


# --- the trainer --------------------------------------------------------------------------------
def test_a_trainer_epoch_is_made_of_p_times_k_steps_mined_inside_the_step(tmp_path: Path,
                                                                          monkeypatch) -> None:
    config = profile("smoke").replace(
        root=str(write_tiny_benchmark(tmp_path / "tiny")), selector="batch-hard",
        stage1={"epochs": 0, "decay_epoch": None}, stage2={"epochs": 0})
    steps, losses = [], []
    real_hardest, real_losses = trainer.hardest_triplets, trainer.batch_losses

    def no_extraction(*args, **kwargs):
        raise AssertionError("Batch-Hard must not extract the training set's features")

    def recording_hardest(output: MPMOutput, pids: torch.Tensor):
        steps.append(pids.tolist())
        return real_hardest(output, pids)

    def recording_losses(output: MPMOutput, pids: torch.Tensor, *args):
        losses.append((output.parts.shape[0], pids.tolist()))
        return real_losses(output, pids, *args)

    monkeypatch.setattr(trainer, "training_features", no_extraction)
    monkeypatch.setattr(trainer, "hardest_triplets", recording_hardest)
    monkeypatch.setattr(trainer, "batch_losses", recording_losses)
    schedule = trainer.Trainer(config, load_dataset(config.dataset, config.root), tmp_path / "cache", CPU)
    history = schedule.fit().history

    assert len(steps) == len(losses) == 72 // 8 == 9
    for step, (rows, labels) in zip(steps, losses):
        assert len(step) == 24
        groups = [step[i:i + 4] for i in range(0, 24, 4)]
        assert all(len(set(group)) == 1 for group in groups)  # P = 6 identities × K = 4 images
        assert len({group[0] for group in groups}) == 6
        anchors, positives, negatives = labels[:24], labels[24:48], labels[48:]
        assert rows == 72 and anchors == step and positives == step
        assert all(n != a for a, n in zip(anchors, negatives))
    [row] = history
    assert (row["stage"], row["steps"], row["images"]) == (3, 9, 9 * 24)
    assert (row["positive_fallbacks"], row["negative_fallbacks"]) == (0, 0)
    assert row["triplet_loss"] > 0
