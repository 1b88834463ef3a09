"""Person masks by the paper's padded Mask R-CNN (§III-B): geometry, detector, instance
selection, the batched pipeline, the resumable dataset runner and mask-quality evaluation."""

from mpm.masks.detector import (
    ANCHOR_RATIOS,
    ANCHOR_SIZES,
    WeightsUnavailableError,
    build_mask_rcnn,
    paper_anchor_generator,
    pretrained_mask_rcnn,
    random_mask_rcnn,
)
from mpm.masks.geometry import Region, binarize, centre_region, crop_region, dilate, pad_centred
from mpm.masks.pipeline import ExtractedMask, MaskExtractor
from mpm.masks.quality import MaskQuality, compare_mask_folders, compare_masks, mask_iou
from mpm.masks.runner import (
    MaskJob,
    RunReport,
    default_masks_dir,
    plan_jobs,
    report_path,
    run_extraction,
)
from mpm.masks.person_choice import COCO_PERSON_LABEL, select_person

__all__ = [
    "ANCHOR_RATIOS",
    "ANCHOR_SIZES",
    "COCO_PERSON_LABEL",
    "ExtractedMask",
    "MaskExtractor",
    "MaskJob",
    "MaskQuality",
    "Region",
    "RunReport",
    "WeightsUnavailableError",
    "binarize",
    "build_mask_rcnn",
    "centre_region",
    "compare_mask_folders",
    "compare_masks",
    "crop_region",
    "default_masks_dir",
    "dilate",
    "mask_iou",
    "pad_centred",
    "paper_anchor_generator",
    "plan_jobs",
    "pretrained_mask_rcnn",
    "random_mask_rcnn",
    "report_path",
    "run_extraction",
    "select_person",
]
