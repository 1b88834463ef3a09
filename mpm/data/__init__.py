"""Datasets: readers for the real benchmarks, the synthetic benchmark, transforms and samplers."""

from mpm.data.cuhk03 import read_cuhk03
from mpm.data.dataset import ReIDDataset, read_image, relabel_pids
from mpm.data.duke import parse_duke_name, read_dukemtmc
from mpm.data.market import (
    parse_custom_name,
    parse_market_name,
    parse_synthetic_name,
    read_custom,
    read_market1501,
    read_market_layout,
    read_synthetic,
)
from mpm.data.mask_files import check_masks, mask_path, missing_masks, read_mask
from mpm.data.splits import DISTRACTOR_PID, DatasetSplits, ImageRecord, JUNK_PID
from mpm.data.registry import load_dataset
from mpm.data.samplers import PKSampler
from mpm.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

__all__ = [
    "DISTRACTOR_PID",
    "JUNK_PID",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DatasetSplits",
    "ImageRecord",
    "PKSampler",
    "ReIDDataset",
    "build_transforms",
    "check_masks",
    "load_dataset",
    "mask_path",
    "missing_masks",
    "parse_custom_name",
    "parse_duke_name",
    "parse_market_name",
    "parse_synthetic_name",
    "read_cuhk03",
    "read_custom",
    "read_dukemtmc",
    "read_image",
    "read_market1501",
    "read_market_layout",
    "read_mask",
    "read_synthetic",
    "relabel_pids",
]
