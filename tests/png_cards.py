"""Tiny PNG datasets for tests: grey images with one rectangle, masks 0/255."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def png_card(folder: Path, extra: str, *, n: int = 3, shape: tuple[int, int] = (32, 40)) -> Path:
    """``n`` cases in ``folder/img`` and ``folder/msk`` (the rectangle brighter, its mask 255) and a
    dataset card ``folder/card.toml`` over them with ``extra`` card lines (label_values, names...)."""
    for sub in ("img", "msk"):
        (folder / sub).mkdir(parents=True)
    h, w = shape
    for i in range(n):
        mask = np.zeros(shape, np.uint8)
        mask[h // 4:h * 5 // 8, w // 4:w * 3 // 4] = 255
        Image.fromarray((50 + mask // 3).astype(np.uint8)).save(folder / "img" / f"c{i}.png")
        Image.fromarray(mask).save(folder / "msk" / f"c{i}.png")
    path = folder / "card.toml"
    path.write_text(f'[dataset]\nimages = "img/*.png"\nlabels = "msk/{{key}}.png"\n{extra}')
    return path
