"""Location markers and labels in the background, as on real exams.

- Lead marker: the radiographer's radio-opaque letter block (``"L"``, ``"R"``, often with the
  view, e.g. ``"RMLO"``) in a plastic holder, placed beside the breast. It is part of the
  exposure: added to the line integral before the detector, so it is blurred and noisy and
  shows bright (it attenuates everything).
- Burned-in labels: the view label (e.g. ``"R MLO"``) and a text line of acquisition data
  drawn into the stored pixels after processing (FFDM), or, on film, the flashed patient-ID
  card: a bright rectangle with dark print.

Everything is placed in the final (displayed) frame, in background corners on the side away
from the chest wall, never over the breast; a marker is skipped when there is no room.
"""

from __future__ import annotations

import cv2
import numpy as np

from calcsdk.training.synth.acquisition import MU_LEAD_MARKER

_FONT = cv2.FONT_HERSHEY_DUPLEX
_CLEARANCE_MM = 4.0  # distance kept from the breast
_EDGE_MM = 3.0  # distance kept from the image edge


class Occupancy:
    """Where the background is still free, on a coarse grid: the breast (dilated) and any
    marker already placed are occupied."""

    def __init__(self, inside: np.ndarray, spacing_mm: float):
        self.step = max(1, round(1.0 / spacing_mm))  # ~1 mm cells
        self.spacing_mm = spacing_mm
        coarse = (inside[:: self.step, :: self.step] > 0.01).astype(np.uint8)
        radius = max(1, round(_CLEARANCE_MM / (self.step * spacing_mm)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        self.taken = cv2.dilate(coarse, kernel) > 0
        self.shape = inside.shape

    def find(
        self, box_h: int, box_w: int, chest_wall_right: bool, prefer_top: bool
    ) -> tuple[int, int] | None:
        """Top-left pixel of a free ``box_h x box_w`` region near a far corner, or None."""
        height, width = self.shape
        edge = round(_EDGE_MM / self.spacing_mm)
        if box_h + 2 * edge > height or box_w + 2 * edge > width:
            return None
        far_x = edge if chest_wall_right else width - box_w - edge
        inward = 1 if chest_wall_right else -1
        rows = [edge, height - box_h - edge]
        if not prefer_top:
            rows.reverse()
        for row in rows:
            for shift in range(0, width // 3, max(1, box_w // 4)):
                col = far_x + inward * shift
                if 0 <= col <= width - box_w and self._free(row, col, box_h, box_w):
                    return row, col
        return None

    def _free(self, row: int, col: int, box_h: int, box_w: int) -> bool:
        s = self.step
        return not self.taken[
            row // s : (row + box_h) // s + 1, col // s : (col + box_w) // s + 1
        ].any()

    def occupy(self, row: int, col: int, box_h: int, box_w: int) -> None:
        s = self.step
        self.taken[row // s : (row + box_h) // s + 1, col // s : (col + box_w) // s + 1] = True


def text_mask(text: str, height_px: int, bold: bool = True) -> np.ndarray:
    """``(h, w)`` float32 mask in [0, 1] of ``text`` drawn about ``height_px`` tall."""
    scale = max(height_px, 4) / 22.0
    thickness = max(1, round(scale * (2.2 if bold else 1.2)))
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = thickness + 2
    canvas = np.zeros((h + base + 2 * pad, w + 2 * pad), dtype=np.uint8)
    cv2.putText(canvas, text, (pad, pad + h), _FONT, scale, 255, thickness, cv2.LINE_AA)
    return canvas.astype(np.float32) * np.float32(1.0 / 255.0)


def add_lead_marker(
    line_integral: np.ndarray,
    occupancy: Occupancy,
    text: str,
    chest_wall_right: bool,
    rng: np.random.Generator,
) -> tuple[int, int, int, int] | None:
    """Add a lead letter block to the line integral (final frame); returns its pixel box
    ``(x1, y1, x2, y2)`` or None when there is no room."""
    s = occupancy.spacing_mm
    letters = text_mask(text, round(rng.uniform(6.0, 11.0) / s))
    pad = round(rng.uniform(1.0, 2.5) / s)
    box_h, box_w = letters.shape[0] + 2 * pad, letters.shape[1] + 2 * pad
    spot = occupancy.find(box_h, box_w, chest_wall_right, prefer_top=bool(rng.random() < 0.7))
    if spot is None:
        return None
    row, col = spot
    block = np.full((box_h, box_w), np.float32(rng.uniform(0.05, 0.25)))  # plastic holder
    block[pad : pad + letters.shape[0], pad : pad + letters.shape[1]] += letters * np.float32(
        MU_LEAD_MARKER
    )
    line_integral[row : row + box_h, col : col + box_w] += block
    occupancy.occupy(row, col, box_h, box_w)
    return col, row, col + box_w, row + box_h


def burn_labels(
    pixels: np.ndarray,
    occupancy: Occupancy,
    lines: tuple[str, ...],
    chest_wall_right: bool,
    film: bool,
    full_scale: int,
    rng: np.random.Generator,
) -> list[tuple[int, int, int, int]]:
    """Burn text labels into the stored pixels (final frame), in place.

    Args:
        pixels: ``(H, W)`` uint16 or uint8 image.
        occupancy: free background (updated).
        lines: the view label first (large), then text lines (small).
        chest_wall_right: chest wall at the right image edge.
        film: draw a flashed ID card (bright box, dark print) instead of white overlay text.
        full_scale: the largest stored value (``2**bits_stored - 1``).
        rng: the image's random generator.

    Returns:
        Pixel boxes ``(x1, y1, x2, y2)`` of what was burned.
    """
    s = occupancy.spacing_mm
    full = float(full_scale)
    top = rng.random() < 0.5
    boxes = []
    masks = [text_mask(lines[0], round(rng.uniform(5.0, 9.0) / s))]
    masks += [text_mask(line, round(rng.uniform(2.5, 3.5) / s), bold=False) for line in lines[1:]]
    if film:
        width = max(m.shape[1] for m in masks)
        card = np.zeros((sum(m.shape[0] for m in masks), width), dtype=np.float32)
        row = 0
        for m in masks:
            card[row : row + m.shape[0], : m.shape[1]] = m
            row += m.shape[0]
        masks = [card]
    for mask in masks:
        spot = occupancy.find(mask.shape[0], mask.shape[1], chest_wall_right, prefer_top=top)
        if spot is None:
            continue
        row, col = spot
        region = pixels[row : row + mask.shape[0], col : col + mask.shape[1]]
        if film:
            paper, ink = rng.uniform(0.8, 0.95) * full, rng.uniform(0.05, 0.2) * full
            values = paper + (ink - paper) * mask
        else:
            level = full * rng.uniform(0.85, 1.0)
            values = region.astype(np.float32) * (1.0 - mask) + level * mask
        region[...] = np.clip(np.rint(values), 0, full).astype(pixels.dtype)
        occupancy.occupy(row, col, mask.shape[0], mask.shape[1])
        boxes.append((col, row, col + mask.shape[1], row + mask.shape[0]))
    return boxes
