"""Loaders for public mammography datasets; each returns a list of :class:`ImageRecord`.

===============  ==================  ==========================================================
dataset          loader              what becomes a box
===============  ==================  ==========================================================
mini-MIAS        :func:`load_mias`   ``CALC`` circles (y flipped from the bottom-left origin)
CBIS-DDSM        ``load_cbis_ddsm``  bounding box of each calcification ROI mask
INbreast         ``load_inbreast``   drawn clusters, else single-linkage groups of calcifications
VinDr-Mammo      ``load_vindr``      "Suspicious Calcification" findings
COCO JSON        ``load_coco``       annotations of categories named malignant/benign (or mapped)
===============  ==================  ==========================================================

Boxes are xyxy float32 in original image pixels (x2/y2 exclusive); labels 0 malignant, 1 benign.
These modules need numpy, OpenCV and the standard library only (pydicom for DICOM masks).
"""

from __future__ import annotations

from calcsdk.training.datasets.cbis_ddsm import load_cbis_ddsm
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.datasets.inbreast import load_inbreast
from calcsdk.training.datasets.mias import load_mias
from calcsdk.training.datasets.record import (
    BENIGN,
    CLASS_NAMES,
    MALIGNANT,
    NORMAL_IMAGE,
    ImageRecord,
    records_to_ground_truth,
)
from calcsdk.training.datasets.vindr import load_vindr

__all__ = [
    "BENIGN",
    "CLASS_NAMES",
    "MALIGNANT",
    "NORMAL_IMAGE",
    "ImageRecord",
    "load_cbis_ddsm",
    "load_coco",
    "load_inbreast",
    "load_mias",
    "load_vindr",
    "records_to_ground_truth",
]
