"""The records every reader returns: one image with its identity and camera, and a dataset's splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

JUNK_PID = -1
DISTRACTOR_PID = 0


@dataclass(frozen=True)
class ImageRecord:
    """One image of a re-identification dataset.

    ``path`` is the image file, ``pid`` the identity as written by the dataset (Market-1501:
    −1 junk, 0 distractor), ``camid`` the camera counted from 0 (the file names count from 1),
    and ``split`` the folder below the dataset root that holds the image (``bounding_box_test``,
    ``images_labeled`` ...); the image's mask lives at ``<root>/masks/<split>/<stem>.png``.
    """

    path: Path
    pid: int
    camid: int
    split: str

    @property
    def stem(self) -> str:
        """The file name without its extension (the mask's file name without ``.png``)."""
        return self.path.stem

    @property
    def is_junk(self) -> bool:
        """True for Market-1501's junk images (identity −1), which evaluation ignores."""
        return self.pid == JUNK_PID

    @property
    def is_distractor(self) -> bool:
        """True for distractors (identity 0), which evaluation keeps as negatives."""
        return self.pid == DISTRACTOR_PID


@dataclass
class DatasetSplits:
    """The train / query / gallery (and optional ``gt_bbox``) records of one dataset.

    ``eval_protocol`` tells the evaluation which protocol applies: ``"market"`` (all gallery
    images, same identity and camera excluded) or ``"cuhk03-classic"`` (single-shot, one
    gallery image per identity sampled repeatedly).
    """

    name: str
    root: Path
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    gt_bbox: list[ImageRecord] = field(default_factory=list)
    eval_protocol: str = "market"

    def all_records(self) -> list[ImageRecord]:
        """Every distinct image of the dataset once, in train, query, gallery, gt_bbox order."""
        seen: set[Path] = set()
        unique = []
        for record in [*self.train, *self.query, *self.gallery, *self.gt_bbox]:
            if record.path not in seen:
                seen.add(record.path)
                unique.append(record)
        return unique

    @property
    def num_train_pids(self) -> int:
        """The number of training identities (the classifier's number of classes)."""
        return len({record.pid for record in self.train})

    @property
    def num_cameras(self) -> int:
        """The number of distinct cameras over all splits."""
        return len({record.camid for record in self.all_records()})

    def check_evaluable(self) -> None:
        """ValueError, one line naming the dataset root, the splits and the cause, unless some query
        identity has a gallery image from another camera (the only queries the protocol scores)."""
        seen = {(record.pid, record.camid) for record in self.gallery}
        cameras: dict[int, set[int]] = {}
        for pid, camid in seen:
            cameras.setdefault(pid, set()).add(camid)
        if any(cameras.get(record.pid, set()) - {record.camid} for record in self.query):
            return
        shared = {record.pid for record in self.query} & set(cameras)
        cause = ("no query identity appears in the gallery" if not shared else
                 f"the {len(shared)} query identities in the gallery are seen there only by the query's own camera")
        raise ValueError(f"{self.name} at {self.root}: the query and gallery splits cannot be evaluated: {cause}, "
                         f"so no query has a match from another camera to score; fix the splits")
