"""CT number shifts: HU calibration offset and a display window/level baked into the data."""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._ct import scanner_range
from harness.perturbations._util import DIRECTION_DOC, DIRECTIONS, draw_sign, ladder
from harness.perturbations.base import NumberOption, Perturbation

HU_OFFSET = (10.0, 20.0, 35.0, 50.0, 75.0)
WINDOW_WIDTH = (1800.0, 1100.0, 700.0, 450.0, 300.0)
LEVEL_SHIFT = (0.0, 25.0, 50.0, 75.0, 100.0)
SOFT_TISSUE_LEVEL = 40.0


@register
class HUOffset(Perturbation):
    """Additive CT-number calibration error (every scanned voxel, air included; stored padding
    beyond the field of view keeps its value).

    Params: ``offset_hu`` (signed). Options: ``direction`` ("both" | "up" | "down").
    """

    name = "hu_offset"
    options_doc = {"direction": DIRECTION_DOC}
    choices = {"direction": DIRECTIONS}
    modalities = frozenset({"ct"})
    parameter_doc = "offset +-{10, 20, 35, 50, 75} HU"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        sign = draw_sign(rng, self.options.get("direction", "both"))
        return {"offset_hu": sign * ladder(HU_OFFSET, severity)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        shifted = case.image + np.float32(params["offset_hu"])
        return case.with_(image=np.stack([scanner_range(s, x) for s, x in zip(shifted, case.image)]))


@register
class WindowShift(Perturbation):
    """Data exported through a display window: HU outside ``[level - width/2, level + width/2]``
    are clipped (kept in HU, not rescaled). The window narrows and its level drifts away from
    the soft-tissue level (40 HU) with severity; windows are nested, so information loss grows
    strictly. Severity 1 (W 1800 / L 40: -860..940 HU) clips air and dense bone only.

    Params: ``width_hu``, ``level_hu``, ``low_hu``, ``high_hu``.
    Options: ``direction`` of the level drift ("both" | "up" | "down"), ``level`` (default 40).
    """

    name = "window_shift"
    numbers = {"level": NumberOption(at_least=-2000, at_most=4000)}  # HU: air -1000 … dense bone / metal
    options_doc = {"direction": "drift of the window level: " + DIRECTION_DOC,
                   "level": "centre level in HU before the drift, -2000 to 4000 (default 40)"}
    choices = {"direction": DIRECTIONS}
    modalities = frozenset({"ct"})
    parameter_doc = ("clip to window W {1800, 1100, 700, 450, 300} HU at level 40 +-{0, 25, 50, 75, 100} HU")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        sign = draw_sign(rng, self.options.get("direction", "both"))
        width = ladder(WINDOW_WIDTH, severity)
        level = float(self.options.get("level", SOFT_TISSUE_LEVEL)) + sign * ladder(LEVEL_SHIFT, severity)
        return {"width_hu": width, "level_hu": level,
                "low_hu": level - width / 2, "high_hu": level + width / 2}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        return case.with_(image=np.clip(case.image, params["low_hu"], params["high_hu"]).astype(np.float32))
