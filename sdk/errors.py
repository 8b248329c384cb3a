"""The calcsdk error family.

Every fault the SDK detects is raised, never printed. Caller mistakes that are plainly about
a Python type or value also derive from ``TypeError``/``ValueError`` so that generic handlers
keep working; everything derives from :class:`CalcSdkError` so that batch tools can catch one
family and move on to the next file.

Each error names its ``source`` (a file path, ``"<array>"``, a bundle path) and a ``reason``;
``str(err)`` reads ``"<source>: <reason>"``.
"""

from __future__ import annotations

import os


class CalcSdkError(Exception):
    """Base of every error calcsdk raises on purpose."""

    def __init__(self, reason: str, source: str | os.PathLike | None = None):
        self.reason = reason
        self.source = None if source is None else str(source)
        super().__init__(f"{self.source}: {reason}" if self.source else reason)


# --- image input --------------------------------------------------------------------------
class ImageError(CalcSdkError):
    """An image could not be turned into a valid :class:`~calcsdk.image.Mammogram`."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The path does not exist or is not a regular file."""


class CorruptImageError(ImageError):
    """The file exists but its bytes cannot be decoded (truncated, damaged, wrong magic)."""


class UnsupportedFormatError(ImageError):
    """A container or encoding calcsdk does not read (e.g. multi-frame or colour DICOM)."""


class EmptyImageError(ImageError, ValueError):
    """Zero-size image, or one with a zero-length axis."""


class InvalidPixelsError(ImageError, ValueError):
    """Pixels that are not finite (NaN/inf) or otherwise unusable (constant image where
    a range is required, negative spacing, ...)."""


class ImageDtypeError(ImageError, TypeError):
    """An array of a dtype or dimensionality calcsdk does not accept."""


class ImageTooLargeError(ImageError, ValueError):
    """More pixels than the configured limit (guards against decompression bombs)."""


class ArchiveError(ImageError):
    """A zip or tar archive of images, or one of its members, cannot be read (corrupt,
    truncated, encrypted, an unsupported compression, a member too large)."""


# --- models and runtime -------------------------------------------------------------------
class BundleError(CalcSdkError):
    """A model bundle is malformed, tampered with, incomplete or of an unknown version."""


class BackendUnavailableError(CalcSdkError):
    """A requested backend, execution provider, device or precision is not available here."""
