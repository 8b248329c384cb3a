"""Data-set plan: which image shows what, decided once, centrally, from the seed.

The plan fixes, for every image index, the patient, view, laterality, density, film or digital,
the classes of its calcification clusters and how many classifier ROIs to crop from it. The
pixels of image ``i`` are then drawn from ``numpy.random.SeedSequence([seed, i])`` alone, so the
number of worker processes never changes a byte.

Layout: images come in groups of four per patient (L-CC, L-MLO, R-CC, R-MLO); both views of a
breast share its role (malignant / benign / normal) where the counts allow. The defaults scale
the paper's data set: 3,265 images, 883 malignant-featuring, 552 benign-featuring, about 2,500
boxes (at most four per image) and 5,000 ROIs in the ratio malignant:benign:normal = 2:1:1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from calcsdk.training.synth.config import DENSITIES, SynthConfig

logger = logging.getLogger(__name__)

PAPER_IMAGES = 3265
PAPER_MALIGNANT_IMAGES = 883
PAPER_BENIGN_IMAGES = 552
PAPER_BOXES = 2500
PAPER_ROIS = 5000
MAX_CLUSTERS_PER_IMAGE = 4
SECOND_CLUSTER_BENIGN = 0.2  # extra clusters of a malignant-featuring image that are benign
_VIEW_ORDER = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))
_PLAN_STREAM = 0x504C414E  # "PLAN": keeps the plan's random stream apart from the images'


@dataclass(frozen=True)
class DatasetCounts:
    """What the data set must contain.

    Attributes:
        images: number of images.
        malignant_images: images with at least one malignant cluster.
        benign_images: images whose clusters are all benign.
        boxes: total clusters (ground-truth boxes) over all images.
        rois: total classifier ROIs (split 2:1:1 malignant:benign:normal).
        strict: when False (derived counts) ROI classes without any cluster are dropped with a
            log message; when True that is an error.
    """

    images: int
    malignant_images: int
    benign_images: int
    boxes: int
    rois: int
    strict: bool = True

    def __post_init__(self) -> None:
        for name in ("images", "malignant_images", "benign_images", "boxes", "rois"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} should be a non-negative int, got {value!r}")
        featuring = self.malignant_images + self.benign_images
        if featuring > self.images:
            raise ValueError(
                f"malignant_images + benign_images ({featuring}) exceeds images ({self.images})"
            )
        if not featuring <= self.boxes <= MAX_CLUSTERS_PER_IMAGE * featuring:
            raise ValueError(
                f"boxes should be within [{featuring}, {MAX_CLUSTERS_PER_IMAGE * featuring}] for "
                f"{featuring} images with clusters (1 to {MAX_CLUSTERS_PER_IMAGE} each), "
                f"got {self.boxes}"
            )

    @property
    def roi_split(self) -> tuple[int, int, int]:
        """ROIs per class (malignant, benign, normal) in the paper's 2:1:1 ratio."""
        malignant = round(self.rois / 2)
        benign = round(self.rois / 4)
        return malignant, benign, self.rois - malignant - benign


def paper_counts(
    images: int,
    *,
    malignant_images: int | None = None,
    benign_images: int | None = None,
    boxes: int | None = None,
    rois: int | None = None,
) -> DatasetCounts:
    """Counts for ``images`` images, scaling the paper's proportions where not given.

    Derived counts are rounded and clamped to what the images can hold; explicit ones are
    validated as given (``ValueError`` when inconsistent).
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise ValueError(f"images should be a non-negative int, got {images!r}")
    scale = images / PAPER_IMAGES
    malignant = (
        round(PAPER_MALIGNANT_IMAGES * scale) if malignant_images is None else malignant_images
    )
    benign = round(PAPER_BENIGN_IMAGES * scale) if benign_images is None else benign_images
    featuring = malignant + benign
    if boxes is None:
        boxes = min(max(round(PAPER_BOXES * scale), featuring), MAX_CLUSTERS_PER_IMAGE * featuring)
    strict = rois is not None
    if rois is None:
        rois = round(PAPER_ROIS * scale)
    return DatasetCounts(images, malignant, benign, boxes, rois, strict)


@dataclass(frozen=True)
class ImagePlan:
    """What image ``index`` of the data set shows.

    Attributes:
        index: 0-based position; the COCO image id is ``index + 1``.
        seed: the data-set seed (pixels come from ``SeedSequence([seed, index])``).
        patient_index: 0-based patient number (four images per patient).
        view: ``"CC"`` or ``"MLO"``.
        laterality: ``"L"`` or ``"R"``.
        density: BI-RADS density ``"A"``..``"D"`` (shared by the patient's images).
        film: True for a digitised screen-film image (8-bit), False for FFDM.
        cluster_labels: class of each cluster to draw, ``"malignant"`` or ``"benign"``.
        cluster_rois: classifier ROIs to crop around each cluster (same order).
        normal_rois: classifier ROIs of normal tissue to crop from this image.
    """

    index: int
    seed: int
    patient_index: int
    view: str
    laterality: str
    density: str
    film: bool
    cluster_labels: tuple[str, ...] = ()
    cluster_rois: tuple[int, ...] = ()
    normal_rois: int = 0

    @property
    def image_id(self) -> int:
        """COCO image id (1-based)."""
        return self.index + 1

    @property
    def patient_id(self) -> str:
        """Synthetic patient identifier, e.g. ``"SYN00042"``."""
        return f"SYN{self.patient_index:05d}"

    @property
    def role(self) -> str:
        """``"malignant"`` (any malignant cluster), ``"benign"`` or ``"normal"``."""
        if "malignant" in self.cluster_labels:
            return "malignant"
        return "benign" if self.cluster_labels else "normal"


def plan_dataset(counts: DatasetCounts, config: SynthConfig, seed: int) -> list[ImagePlan]:
    """Plan every image of the data set (deterministic in ``seed``).

    Raises:
        ValueError: ROIs requested for a class that has no cluster (with explicit counts).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _PLAN_STREAM]))
    n = counts.images
    patients = (n + 3) // 4
    weights = np.asarray(config.density_weights, dtype=float)
    density = rng.choice(len(DENSITIES), size=patients, p=weights / weights.sum())
    film = rng.random(patients) < config.film_fraction

    roles = _breast_roles(counts, rng)
    labels = _cluster_labels(roles, counts.boxes, rng)
    cluster_rois, normal_rois = _roi_quotas(labels, counts, rng)
    plans = []
    for index in range(n):
        patient = index // 4
        laterality, view = _VIEW_ORDER[index % 4]
        plans.append(
            ImagePlan(
                index=index,
                seed=seed,
                patient_index=patient,
                view=view,
                laterality=laterality,
                density=DENSITIES[density[patient]],
                film=bool(film[patient]),
                cluster_labels=labels[index],
                cluster_rois=cluster_rois[index],
                normal_rois=normal_rois[index],
            )
        )
    return plans


def _breast_roles(counts: DatasetCounts, rng: np.random.Generator) -> list[str]:
    """Role of each image; consecutive roles fill the two views of a breast together."""
    n = counts.images
    normal = n - counts.malignant_images - counts.benign_images
    ordered = (
        ["malignant"] * counts.malignant_images
        + ["benign"] * counts.benign_images
        + ["normal"] * normal
    )
    breasts = [list(range(start, min(start + 2, n))) for start in range(0, n, 2)]
    order = rng.permutation(len(breasts))
    roles = [""] * n
    position = 0
    for breast in order:
        for index in breasts[breast]:
            roles[index] = ordered[position]
            position += 1
    return roles


def _cluster_labels(
    roles: list[str], boxes: int, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    """Cluster classes per image: one cluster per featuring image, extras spread at random."""
    featuring = [i for i, role in enumerate(roles) if role != "normal"]
    per_image = dict.fromkeys(featuring, 1)
    for _ in range(boxes - len(featuring)):
        open_images = [i for i in featuring if per_image[i] < MAX_CLUSTERS_PER_IMAGE]
        per_image[open_images[int(rng.integers(len(open_images)))]] += 1
    labels: list[tuple[str, ...]] = []
    for index, role in enumerate(roles):
        if role == "normal":
            labels.append(())
        elif role == "benign":
            labels.append(("benign",) * per_image[index])
        else:
            extra = [
                "benign" if rng.random() < SECOND_CLUSTER_BENIGN else "malignant"
                for _ in range(per_image[index] - 1)
            ]
            labels.append(("malignant", *extra))
    return labels


def _roi_quotas(
    labels: list[tuple[str, ...]], counts: DatasetCounts, rng: np.random.Generator
) -> tuple[list[tuple[int, ...]], list[int]]:
    """Spread the ROI quotas evenly (round robin, random order) over clusters and images."""
    wanted = dict(zip(("malignant", "benign", "normal"), counts.roi_split))
    per_cluster = [[0] * len(image_labels) for image_labels in labels]
    for label in ("malignant", "benign"):
        slots = [
            (i, k)
            for i, image_labels in enumerate(labels)
            for k, lab in enumerate(image_labels)
            if lab == label
        ]
        if not slots:
            if wanted[label] and counts.strict:
                raise ValueError(
                    f"{wanted[label]} {label} ROIs requested but the data set has no {label} "
                    "cluster; ask for more images or fewer ROIs"
                )
            if wanted[label]:
                logger.info(
                    "no %s cluster in this data set: its %d ROIs are dropped", label, wanted[label]
                )
            continue
        for rank, slot in enumerate(rng.permutation(len(slots))):
            image, cluster = slots[slot]
            per_cluster[image][cluster] += wanted[label] // len(slots) + (
                rank < wanted[label] % len(slots)
            )
    normal_images = [i for i, image_labels in enumerate(labels) if not image_labels]
    hosts = normal_images or list(range(len(labels)))
    normal = [0] * len(labels)
    if hosts:
        for rank, slot in enumerate(rng.permutation(len(hosts))):
            normal[hosts[slot]] += wanted["normal"] // len(hosts) + (
                rank < wanted["normal"] % len(hosts)
            )
    elif wanted["normal"] and counts.strict:
        raise ValueError(f"{wanted['normal']} normal ROIs requested from an empty data set")
    return [tuple(c) for c in per_cluster], normal
