"""Parameter groups, the optimizer and the learning rates of each training stage (paper §IV-B).

The network's parameters form three groups (backbone, reducers, classifiers); each stage gives
each group a learning rate, or none to freeze it (its BatchNorm statistics too). SGD with
momentum and weight decay, no Nesterov.

A learned threshold (`mpm.model.LearnedThresholds`) is a group of its own, ``threshold``, at the
stage's ``lr_threshold`` (None: fixed in the stage), without weight decay and with the stage's decay,
taken out of the backbone group; after every step it is clamped to [0, 1] (`clamp_thresholds`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mpm.config import PARAMETER_GROUPS, ExperimentConfig, StageConfig
from mpm.model import MPMNet


def group_modules(model: MPMNet) -> dict[str, nn.Module]:
    """The three learning-rate groups of paper §IV-B (base network, new layers, classifiers), by name."""
    return {"backbone": model.backbone, "reducers": model.reducers, "classifiers": model.classifiers}

THRESHOLD_GROUP = "threshold"
"""The optimizer group of a learned threshold."""


def configure_stage(model: MPMNet, stage: StageConfig) -> list[dict[str, Any]]:
    """Freeze the groups without a learning rate, unfreeze the others; return optimizer groups.

    Each returned group is ``{"name", "params", "lr", "base_lr"}`` for a trainable group; a learned
    threshold's also sets ``weight_decay`` 0.
    """
    groups = []
    rates = stage.learning_rates()
    thresholds = model.learned_thresholds
    for name, module in group_modules(model).items():
        trainable = rates[name] is not None
        params = [parameter for parameter in module.parameters()
                  if thresholds is None or parameter is not thresholds.values]
        for parameter in params:
            parameter.requires_grad_(trainable)
        if trainable:
            groups.append({"name": name, "params": params, "lr": rates[name], "base_lr": rates[name]})
    if thresholds is not None:
        thresholds.values.requires_grad_(stage.lr_threshold is not None)
        if stage.lr_threshold is not None:
            groups.append({"name": THRESHOLD_GROUP, "params": [thresholds.values], "lr": stage.lr_threshold,
                           "base_lr": stage.lr_threshold, "weight_decay": 0.0})
    return groups

def build_optimizer(model: MPMNet, stage: StageConfig, config: ExperimentConfig) -> torch.optim.SGD:
    """SGD (momentum, weight decay, no Nesterov) over the stage's trainable groups."""
    return torch.optim.SGD(
        configure_stage(model, stage),
        lr=0.0,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=False,
    )

def set_learning_rates(optimizer: torch.optim.Optimizer, stage: StageConfig, epoch: int) -> dict[str, float | None]:
    """Apply the stage's decay for 0-based ``epoch``; return each group's learning rate (None: frozen)."""
    scale = stage.lr_scale(epoch)
    rates: dict[str, float | None] = dict.fromkeys(PARAMETER_GROUPS)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * scale
        rates[group["name"]] = group["lr"]
    return rates

def clamp_thresholds(model: MPMNet) -> None:
    """Clamp a learned threshold to [0, 1] after an optimizer step (nothing for a fixed one)."""
    if model.learned_thresholds is not None:
        with torch.no_grad():
            model.learned_thresholds.values.clamp_(0.0, 1.0)


def threshold_columns(model: MPMNet) -> dict[str, float]:
    """The history columns of a learned threshold, each stage's value now (none for a fixed one)."""
    if model.learned_thresholds is None:
        return {}
    conv1, maxpool = model.learned_thresholds.values.tolist()
    return {"threshold_conv1": conv1, "threshold_maxpool": maxpool}


def set_train_mode(model: MPMNet, stage: StageConfig) -> None:
    """Training mode for trainable groups; frozen groups stay in eval mode (BatchNorm fixed)."""
    model.train()
    rates = stage.learning_rates()
    for name, module in group_modules(model).items():
        if rates[name] is None:
            module.eval()
