"""Evaluate a trained network on a dataset: features of query, gallery (and gt_bbox) → the
evaluation package's record of SQ, MQ, SQ+RR and MQ+RR under the Market-1501 protocol, the
per-query table, and the activation summary of `mpm.runs.activations`."""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from mpm.config import ExperimentConfig, evaluation_reads_mask_files
from mpm.data import DatasetSplits, ReIDDataset, build_transforms
from mpm.data.mask_files import mask_path
from mpm.evaluation import FeatureSet, evaluate_all, extract_features
from mpm.model import MPMNet, build_model
from mpm.runs.activations import activation_record, sample_indices
from mpm.runs.checkpoints import (FINAL_NAME, CorruptCheckpoint, latest_intact_checkpoint, load_checkpoint,
                                  require_keys)
from mpm.runs.paths import checkpoint_dir, default_results_root
from mpm.runs.runtime import CUDA_FEATURE_BATCH, loader_settings
from mpm.runs.store import queries_to_csv, read_record

EVAL_BATCH_SIZE = 128
CUHK03_SINGLE_SHOT_REPEATS = 10
"""Gallery samplings of the CUHK03 classic single-shot protocol, averaged (seeded by the config)."""


def split_features(model: MPMNet, config: ExperimentConfig, splits: DatasetSplits, split: str,
                   device: torch.device) -> FeatureSet:
    """Retrieval features (H concatenated) of ``splits.<split>`` ("query", "gallery", "gt_bbox").

    On CUDA in batches of `CUDA_FEATURE_BATCH`, under float16 autocast when the config asks for
    ``amp``, read by the config's loader workers into pinned memory; on CPU as always (batches of
    `EVAL_BATCH_SIZE`, float32).
    """
    dataset = ReIDDataset(getattr(splits, split), splits.root,
                          build_transforms(config.height, config.width, train=False),
                          use_masks=evaluation_reads_mask_files(config))
    on_cuda = device.type == "cuda"
    loader = DataLoader(dataset, batch_size=CUDA_FEATURE_BATCH if on_cuda else EVAL_BATCH_SIZE, shuffle=False,
                        generator=torch.Generator(), **loader_settings(config.num_workers, device))

    def embed(images: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.float16, enabled=config.amp and on_cuda):
            return model.embed(images, masks)

    return extract_features(embed, loader, device=device)


@dataclass(frozen=True)
class Evaluation:
    """What a run record stores of a trained network's test: scores, per-query table, activations."""

    metrics: dict[str, Any]
    queries_csv: str
    activations: dict[str, Any]
    seconds: dict[str, float]


def evaluate_model(model: MPMNet, config: ExperimentConfig, splits: DatasetSplits,
                   device: torch.device) -> Evaluation:
    """Everything a record stores of ``model`` tested on ``splits`` (scores in [0, 1]).

    ``metrics`` is the `evaluate_scores` record; ``queries_csv`` the per-query table;
    ``activations`` the `activation_summary`; ``seconds`` what the scoring and the activation pass took.
    """
    started = time.perf_counter()
    scores = evaluate_scores(model, config, splits, device, queries=True)
    per_query = scores.pop("queries")
    queries = queries_to_csv(per_query, [r.pid for r in splits.query], [r.camid for r in splits.query])
    scored = time.perf_counter()
    activations = activation_summary(model, config, splits, device)
    seconds = {"evaluation": round(scored - started, 3), "activations": round(time.perf_counter() - scored, 3)}
    return Evaluation(metrics=scores, queries_csv=queries, activations=activations, seconds=seconds)


def activation_summary(model: MPMNet, config: ExperimentConfig, splits: DatasetSplits,
                       device: torch.device) -> dict[str, Any]:
    """`mpm.runs.activations.activation_record` over query + gallery, maps kept for a few queries.

    The dataset's masks are read even for a network that ignores them (the person share needs
    them); a dataset without mask files records no person share.
    """
    test = list(splits.query) + list(splits.gallery)
    has_masks = all(mask_path(splits.root, r.split, r.stem).is_file() for r in test)
    test_set = ReIDDataset(test, splits.root, build_transforms(config.height, config.width, train=False),
                           use_masks=has_masks)
    samples = sample_indices(len(splits.query))
    summary = activation_record(model, test_set, samples, device, with_person_share=has_masks)
    summary["sample_files"] = [f"{test[i].split}/{test[i].path.name}" for i in samples]
    return summary


def evaluate_scores(model: MPMNet, config: ExperimentConfig, splits: DatasetSplits,
                    device: torch.device, *, queries: bool = False) -> dict[str, Any]:
    """The `mpm.evaluation.evaluate_all` record of ``model`` on ``splits`` (scores in [0, 1]).

    Multi-query pools each query identity's images in the query camera from ``gt_bbox`` when the
    dataset has it, else from the query set (Market-1501 multi-query protocol). CUHK03's classic protocol is scored
    single-shot: one gallery image per identity, sampled ``CUHK03_SINGLE_SHOT_REPEATS`` times.
    """
    model.eval()
    query = split_features(model, config, splits, "query", device)
    gallery = split_features(model, config, splits, "gallery", device)
    pool: dict[str, Any] = {"mq_source": "query"}
    if splits.gt_bbox:
        gt_bbox = split_features(model, config, splits, "gt_bbox", device)
        pool = {"mq_feats": gt_bbox.features, "mq_pids": gt_bbox.pids, "mq_camids": gt_bbox.camids,
                "mq_source": "gt_bbox"}
    if splits.eval_protocol == "cuhk03-classic":
        pool.update(single_shot_repeats=CUHK03_SINGLE_SHOT_REPEATS, seed=config.seed)
    return evaluate_all(query.features, gallery.features, query.pids, gallery.pids, query.camids,
                        gallery.camids, queries=queries, **pool)


def find_checkpoint(run_dir: Path, cache: str | os.PathLike | None, root: str | None = None) -> Path:
    """The final model of a finished run, else its newest intact epoch checkpoint.

    Model weights are not kept with a record; a run without them in the checkpoint folder raises
    FileNotFoundError with the `mpm train` command that rebuilds them (``root``: the dataset root
    to train on, when not the config's).
    """
    config = read_record(run_dir).config
    folder = checkpoint_dir(config, cache)
    final = folder / FINAL_NAME
    if final.is_file():
        return final
    latest = latest_intact_checkpoint(folder)
    if latest is None:
        command = ["mpm", "train", "--config", str(run_dir / "config.yaml"), "--force"]
        if root is not None:
            command += ["--set", f"root={root}"]
        if run_dir.resolve().parent != default_results_root().resolve():
            command += ["--results", str(run_dir.parent)]
        if cache is not None:
            command += ["--cache", str(cache)]
        raise FileNotFoundError(f"the model weights of run {run_dir} are not kept with its record (looked for "
                                f"{final}); retrain them with: {shlex.join(command)}")
    return latest[0]


def load_trained(path: Path, device: torch.device) -> tuple[torch.nn.Module, ExperimentConfig]:
    """The network stored in a checkpoint and the config it was trained with (ValueError naming a bad file)."""
    state = load_checkpoint(path, device)
    require_keys(path, state, ("config", "num_classes", "model"))
    try:
        config = ExperimentConfig.from_dict(state["config"])
    except (ValueError, TypeError) as error:
        raise CorruptCheckpoint(path, f"its config is invalid: {error}") from None
    model = build_model(config.replace(weights=None), state["num_classes"])
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise CorruptCheckpoint(path, f"its weights do not fit the network of its config: "
                                      f"{str(error).splitlines()[0]}") from None
    return model.to(device).eval(), config
