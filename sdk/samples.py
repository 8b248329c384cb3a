"""The sample mammograms shipped inside the package (synthetic, made by ``calcsdk synth``)."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "samples"
_SUFFIXES = (".png", ".dcm", ".tif", ".tiff", ".pgm", ".jpg", ".jpeg")


def sample_paths() -> list[Path]:
    """Paths of the shipped sample mammograms, sorted by name (empty if none are installed)."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in _SUFFIXES)
