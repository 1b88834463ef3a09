"""Parameter groups, the optimizer and the learning rates of each training stage (paper §IV-B).

The network's parameters form three groups (backbone, reducers, classifiers); each stage gives
each group a learning rate, or none to freeze it (its BatchNorm statistics too). SGD with
momentum and weight decay, no Nesterov.
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

def configure_stage(model: MPMNet, stage: StageConfig) -> list[dict[str, Any]]:
    """Freeze the groups without a learning rate, unfreeze the others; return optimizer groups.

    Each returned group is ``{"name", "params", "lr", "base_lr"}`` for a trainable group.
    """
    groups = []
    rates = stage.learning_rates()
    for name, module in group_modules(model).items():
        trainable = rates[name] is not None
        for parameter in module.parameters():
            parameter.requires_grad_(trainable)
        if trainable:
            params = list(module.parameters())
            groups.append({"name": name, "params": params, "lr": rates[name], "base_lr": rates[name]})
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

def set_train_mode(model: MPMNet, stage: StageConfig) -> None:
    """Training mode for trainable groups; frozen groups stay in eval mode (BatchNorm fixed)."""
    model.train()
    rates = stage.learning_rates()
    for name, module in group_modules(model).items():
        if rates[name] is None:
            module.eval()
