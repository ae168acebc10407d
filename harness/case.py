"""The unit of evaluation: one image with its reference label map, spacing and metadata."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

MetadataValue = str | float | int


@dataclass(frozen=True, eq=False)
class Case:
    """One image/reference pair.

    Attributes:
        image: float32 array ``(C, *spatial)``; 2D cases have two spatial axes, 3D cases three.
        label: integer array ``(*spatial)``; 0 is background, 1..K the foreground classes.
        spacing: physical size of a voxel in mm, one value per spatial axis.
        metadata: subgroup attributes (``sex``, ``age``, ``device``...), str or numeric values.
        case_id: stable identifier, unique within a dataset.
    """

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, ...]
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    case_id: str = "case"

    def __post_init__(self) -> None:
        for name in ("image", "label"):  # torch tensors, lists: numpy arrays (a tensor on a GPU must be moved)
            value = getattr(self, name)
            if not isinstance(value, np.ndarray):
                try:
                    object.__setattr__(self, name, np.asarray(value.detach().cpu() if hasattr(value, "detach")
                                                              else value))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"case {self.case_id!r}: {name} must be an array, got {type(value).__name__}"
                                     ) from exc
        if np.ndim(self.spacing) != 1:
            raise ValueError(f"case {self.case_id!r}: spacing must be a sequence (mm per spatial axis), "
                             f"got {self.spacing!r}")
        if self.image.ndim not in (3, 4):
            raise ValueError(
                f"case {self.case_id!r}: image must be (C, *spatial) with 2 or 3 spatial axes, "
                f"got shape {self.image.shape}"
            )
        if self.image.shape[1:] != self.label.shape:
            raise ValueError(
                f"case {self.case_id!r}: image spatial shape {self.image.shape[1:]} does not match "
                f"label shape {self.label.shape}"
            )
        if len(self.spacing) != self.label.ndim:
            raise ValueError(
                f"case {self.case_id!r}: spacing {self.spacing} needs one value per spatial axis "
                f"({self.label.ndim})"
            )
        if self.image.dtype != np.float32:
            object.__setattr__(self, "image", self.image.astype(np.float32))
        if not np.issubdtype(self.label.dtype, np.integer):
            raise ValueError(f"case {self.case_id!r}: label must be an integer array, got {self.label.dtype}")
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        if not all(np.isfinite(s) and s > 0 for s in self.spacing):
            raise ValueError(f"case {self.case_id!r}: spacing must be positive, finite mm, got {self.spacing}")

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return self.label.ndim

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.label.shape)

    def with_(self, **changes: Any) -> "Case":
        """A copy with some fields replaced (the case is immutable)."""
        return replace(self, **changes)
