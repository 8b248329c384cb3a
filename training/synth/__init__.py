"""Realistic synthetic mammograms with calcification clusters (numpy + OpenCV only).

Entry points: :func:`generate_image` (one image from a seed and a plan),
:func:`synthesize_dataset` (a whole data set on disk) and the ``calcsdk synth`` command
(:mod:`calcsdk.training.synth.command`). See each module for the physics and anatomy used.
"""

from __future__ import annotations

from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.dataset import DatasetSummary, synthesize_dataset
from calcsdk.training.synth.generator import SyntheticImage, generate_image
from calcsdk.training.synth.plan import DatasetCounts, ImagePlan, paper_counts, plan_dataset

__all__ = [
    "DatasetCounts",
    "DatasetSummary",
    "ImagePlan",
    "SynthConfig",
    "SyntheticImage",
    "generate_image",
    "paper_counts",
    "plan_dataset",
    "synthesize_dataset",
]
