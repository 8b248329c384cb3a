"""Region proposals: OpenCV-contrib EdgeBoxes on a hand-made gradient edge map.

The pretrained structured-edge model (``model.yml.gz``) is deliberately NOT used: the wheel does
not ship it and its licence is non-commercial (see FINDINGS.md). Instead the edge map is a
Gaussian-smoothed Sobel magnitude, normalised to [0, 1], thinned by non-maximum suppression
along the gradient direction (without thinning EdgeBoxes is ~90x slower), with the orientation
``atan2(gy, gx) mod pi`` that EdgeBoxes needs.

What the edges are drawn on (the default, chosen on measured recall; BENCHMARKS.md):
1. a "speck" image: difference of Gaussians at calcification scale (0.1/0.4 mm);
2. block-max reduced to a 0.4 mm proposal grid (specks survive, the pixel count drops 16x);
3. blurred with a 1 mm Gaussian into a cluster-density map, so that a cluster of specks becomes
   one blob whose contour EdgeBoxes boxes as a whole.
On 25 synthetic mammograms (39 clusters) this raised recall at IoU 0.5 from 0.23 (edges of the
specks themselves, 0.2 mm grid) to 0.62, and cut proposal time from 3.9 s to 0.5 s per image.

Everything here works in the *working* frame: the image resampled to the bundle's working pixel
spacing. Boxes are xyxy float32 in working pixels (see :mod:`calcsdk.boxes`); sizes given in mm
are converted with the working spacing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from calcsdk.opencv_determinism import without_ipp


@dataclass(frozen=True)
class ProposalConfig:
    """EdgeBoxes and filtering parameters; lives in the bundle manifest's ``proposals``."""

    alpha: float = 0.65  # sliding-window step size (Zitnick & Dollar 2014)
    beta: float = 0.55  # NMS threshold between proposals: Zitnick & Dollar's setting for
    # IoU 0.5. Against 0.75 (their IoU 0.7 setting, calcsdk <= 0.3's default) it raised cluster
    # recall at IoU 0.5 from 0.65 to 0.80 (60 synth300 images) and 0.52 to 0.62 (66 unseen
    # images, seed 11), at IoU 0.3 to 0.96-0.99 (BENCHMARKS.md, "Proposal recall")
    eta: float = 1.0  # adaptation rate of beta
    min_score: float = 0.01  # minimum EdgeBoxes score kept
    max_boxes: int = 5000  # proposals returned by EdgeBoxes before mask/size filtering
    edge_min_mag: float = 0.1  # edge pixels below this magnitude are ignored (drives speed)
    edge_merge_thr: float = 0.5  # edge-group merging threshold
    cluster_min_mag: float = 0.5  # minimum magnitude of an edge group
    max_aspect_ratio: float = 3.0  # clusters are roughly compact
    gamma: float = 2.0  # affinity sensitivity
    kappa: float = 1.5  # box-size scale penalty
    edge_sigma_px: float = 0.0  # Gaussian smoothing before Sobel, proposal-grid pixels
    spacing_mm: float | None = 0.4  # EdgeBoxes runs on a grid this coarse (mm/px); None: working
    # spacing. Clusters are 5-25 mm, so 0.4 mm loses no box while EdgeBoxes (whose cost grows
    # with the pixel count) runs on 1/16 of the pixels of a 0.1 mm working image.
    density_sigma_mm: float | None = 1.0  # Gaussian (mm) turning the gridded specks into a
    # cluster-density map before the edge map; None draws edges around each speck instead
    speck_sigmas_mm: tuple[float, float] | None = (0.1, 0.4)  # difference of Gaussians that
    # keeps calcification-sized bright specks and removes tissue-scale structure before the edge
    # map; None runs EdgeBoxes on the plain image (its edges are then mostly tissue texture)
    speck_percentile: float = 99.5  # speck response at this percentile of the breast maps to 1
    min_size_mm: float = 3.0  # smallest proposal side kept, mm
    max_size_mm: float = 25.0  # largest proposal side kept, mm (clusters are ~5-15 mm)
    min_mask_fraction: float = 0.6  # share of a box's area that must lie inside the breast
    max_proposals: int | None = 2000  # best-scoring proposals kept after filtering (None: all);
    # the CNN's cost is linear in this count, so it is the main speed/recall knob

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> ProposalConfig:
        """Build from a manifest section; unknown keys are an error (typos must not pass)."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown proposal parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def edge_map(image01: np.ndarray, sigma_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Thin gradient edges and their orientation for EdgeBoxes.

    Args:
        image01: (H, W) float32 image in [0, 1], working frame.
        sigma_px: Gaussian smoothing in pixels before the Sobel derivatives.
    Returns:
        ``(edges, orientation)``, both (H, W) float32: edge magnitude in [0, 1] after
        non-maximum suppression along the gradient, and orientation in [0, pi).
    """
    img = np.asarray(image01, dtype=np.float32)
    if sigma_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), sigma_px, borderType=cv2.BORDER_REPLICATE)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    mag = cv2.magnitude(gx, gy)
    peak = float(mag.max())
    if peak > 0:
        mag *= 1.0 / peak
    orientation = np.mod(np.arctan2(gy, gx), np.pi).astype(np.float32)
    return _suppress_non_maxima(mag, orientation), orientation


def _suppress_non_maxima(mag: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """Keep pixels that are maxima along their gradient direction (4 quantised directions)."""
    padded = cv2.copyMakeBorder(mag, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    h, w = mag.shape
    # direction bins: 0 = horizontal gradient (compare left/right), 1 = 45 deg, 2 = vertical, 3 = 135
    sector = (np.round(orientation / (np.pi / 4)).astype(np.int8)) % 4
    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}  # (dy, dx) along the gradient
    keep = np.zeros((h, w), dtype=bool)
    for s, (dy, dx) in offsets.items():
        fwd = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        bwd = padded[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        keep |= (sector == s) & (mag >= fwd) & (mag >= bwd)
    return np.where(keep, mag, 0).astype(np.float32)


def edge_boxes(
    image01: np.ndarray, config: ProposalConfig, spacing_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Raw EdgeBoxes proposals on a working-frame image.

    Args:
        image01: (H, W) float32 in [0, 1] at ``spacing_mm`` millimetres per pixel.
        config: EdgeBoxes parameters; ``min_size_mm`` sets EdgeBoxes' minimum box area.
        spacing_mm: working pixel spacing, mm.
    Returns:
        ``(boxes, scores)``: (N, 4) float32 xyxy in working pixels, (N,) float32 EdgeBoxes
        objectness, sorted by decreasing score.
    """
    edges, orientation = edge_map(image01, config.edge_sigma_px)
    min_side_px = max(2.0, config.min_size_mm / spacing_mm)
    eb = cv2.ximgproc.createEdgeBoxes(
        alpha=config.alpha,
        beta=config.beta,
        eta=config.eta,
        minScore=config.min_score,
        maxBoxes=int(config.max_boxes),
        edgeMinMag=config.edge_min_mag,
        edgeMergeThr=config.edge_merge_thr,
        clusterMinMag=config.cluster_min_mag,
        maxAspectRatio=config.max_aspect_ratio,
        minBoxArea=float(min_side_px * min_side_px),
        gamma=config.gamma,
        kappa=config.kappa,
    )
    result = eb.getBoundingBoxes(edges, orientation)
    boxes_xywh, scores = result if isinstance(result, tuple) else (result, None)
    boxes_xywh = np.asarray(boxes_xywh, dtype=np.float32).reshape(-1, 4)
    scores = (
        np.ones(len(boxes_xywh), np.float32)
        if scores is None or len(scores) == 0
        else np.asarray(scores, dtype=np.float32).reshape(-1)
    )
    boxes = boxes_xywh.copy()
    boxes[:, 2:] += boxes[:, :2]
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


def filter_proposals(
    boxes: np.ndarray,
    scores: np.ndarray,
    mask: np.ndarray | None,
    spacing_mm: float,
    config: ProposalConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep proposals whose sides lie in [min_size_mm, max_size_mm] and that lie mostly
    (``min_mask_fraction`` of their area) inside the breast ``mask`` ((H, W) bool, working frame)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    sides_mm = (boxes[:, 2:] - boxes[:, :2]) * spacing_mm
    keep = np.all((sides_mm >= config.min_size_mm) & (sides_mm <= config.max_size_mm), axis=1)
    if mask is not None and len(boxes):
        keep &= mask_fraction(boxes, mask) >= config.min_mask_fraction
    return boxes[keep], scores[keep]


def mask_fraction(boxes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of each box's pixels inside ``mask``, via one integral image. (N,) float32."""
    h, w = mask.shape
    integral = cv2.integral(mask.astype(np.uint8))  # (H+1, W+1) int32
    x1 = np.clip(np.floor(boxes[:, 0]), 0, w).astype(np.intp)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, h).astype(np.intp)
    x2 = np.clip(np.ceil(boxes[:, 2]), 0, w).astype(np.intp)
    y2 = np.clip(np.ceil(boxes[:, 3]), 0, h).astype(np.intp)
    inside = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
    area = np.maximum((x2 - x1) * (y2 - y1), 1)
    return (inside / area).astype(np.float32)


def speck_image(
    image01: np.ndarray, mask: np.ndarray | None, sigmas_px: tuple[float, float], percentile: float
) -> np.ndarray:
    """Calcification-scale bright detail: ``max(G(s1) - G(s2), 0)`` inside the mask, scaled so
    that the ``percentile`` of the breast maps to 1 and clipped to [0, 1]. (H, W) float32."""
    s1, s2 = sigmas_px
    img = np.asarray(image01, np.float32)
    dog = cv2.GaussianBlur(img, (0, 0), s1) - cv2.GaussianBlur(img, (0, 0), s2)
    np.maximum(dog, 0, out=dog)
    if mask is not None:
        dog *= mask
        inside = dog[mask]
    else:
        inside = dog.ravel()
    ref = float(np.percentile(inside, percentile)) if inside.size else 0.0
    return np.clip(dog / ref, 0, 1).astype(np.float32) if ref > 0 else dog


def _to_grid(image: np.ndarray, k: int, reduce: str) -> np.ndarray:
    """Block-reduce (H, W) by an integer factor k ("max" keeps specks, "mean" averages)."""
    if k == 1:
        return image
    h, w = (image.shape[0] // k) * k, (image.shape[1] // k) * k
    blocks = image[:h, :w].reshape(h // k, k, w // k, k)
    return (
        blocks.max(axis=(1, 3)) if reduce == "max" else blocks.mean(axis=(1, 3), dtype=np.float32)
    )


@without_ipp
def propose(
    image01: np.ndarray, mask: np.ndarray | None, spacing_mm: float, config: ProposalConfig
) -> tuple[np.ndarray, np.ndarray]:
    """EdgeBoxes proposals of calcification clusters, filtered by breast mask and size.

    1. speck image at the working spacing (:func:`speck_image`), unless disabled;
    2. block-reduced to the proposal grid (``config.spacing_mm``, an integer multiple of the
       working spacing: block max for specks, block mean for the plain image);
    3. blurred into a cluster-density map (``config.density_sigma_mm``), unless disabled;
    4. EdgeBoxes on its thinned gradient edges (:func:`edge_boxes`);
    5. mask and size filtering (:func:`filter_proposals`), the best ``config.max_proposals``
       kept, boxes mapped back to working pixels.

    Args:
        image01: (H, W) float32 in [0, 1], working frame; mask: (H, W) bool breast or None.
        spacing_mm: working pixel spacing, mm.
    Returns:
        (N, 4) float32 xyxy in working pixels and (N,) float32 EdgeBoxes scores, by score.
    """
    k = 1
    if config.spacing_mm is not None and config.spacing_mm > spacing_mm:
        k = max(1, round(config.spacing_mm / spacing_mm))
    if config.speck_sigmas_mm is not None:
        sigmas = (config.speck_sigmas_mm[0] / spacing_mm, config.speck_sigmas_mm[1] / spacing_mm)
        source = _to_grid(speck_image(image01, mask, sigmas, config.speck_percentile), k, "max")
    else:
        source = _to_grid(np.asarray(image01, np.float32), k, "mean")
    grid_mask = (
        None
        if mask is None
        else _to_grid(mask.astype(np.uint8), k, "max")[: source.shape[0], : source.shape[1]] > 0
    )
    if config.density_sigma_mm is not None and config.density_sigma_mm > 0:
        sigma_px = config.density_sigma_mm / (spacing_mm * k)
        source = cv2.GaussianBlur(source, (0, 0), sigma_px, borderType=cv2.BORDER_REPLICATE)
    boxes, scores = edge_boxes(source, config, spacing_mm * k)
    boxes, scores = filter_proposals(boxes, scores, grid_mask, spacing_mm * k, config)
    if config.max_proposals is not None:  # already sorted by decreasing score
        boxes, scores = boxes[: config.max_proposals], scores[: config.max_proposals]
    return (boxes * np.float32(k)).astype(np.float32), scores
