"""Voxel-overlap metrics: Dice, IoU (Jaccard), precision and recall.

All take two binary masks of equal shape (boolean, or integer/float holding only 0 and 1) and
return a float in [0, 1]; higher is better. Empty policy (never NaN):

========================  =====  ==========================  ===========================
case                      both   reference empty             prediction empty
========================  =====  ==========================  ===========================
dice, iou                 1      0                           0
precision                 1      0 (no true positive)        0 (0/0, scored as failure)
recall                    1      0 (0/0, scored as failure)  0 (nothing found)
========================  =====  ==========================  ===========================

>>> import numpy as np
>>> a = np.zeros((4, 4), bool); a[1:3, 1:3] = True
>>> b = np.zeros((4, 4), bool); b[1:3, 1:4] = True
>>> round(dice(a, b), 4), round(iou(a, b), 4), precision(a, b), round(recall(a, b), 4)
(0.8, 0.6667, 1.0, 0.6667)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.metrics._checks import Empty, as_mask, check_pair, empty_case


@dataclass(frozen=True)
class Confusion:
    """Voxel counts of one prediction/reference pair: true positives, false positives, false
    negatives. Every ratio follows the module's empty policy."""

    tp: int
    fp: int
    fn: int

    @property
    def empty(self) -> Empty:
        return empty_case(self.tp + self.fp, self.tp + self.fn)

    def _ratio(self, num: int, den: int) -> float:
        case = self.empty
        if case != "none":
            return 1.0 if case == "both" else 0.0
        return num / den

    def dice(self) -> float:
        """2 TP / (2 TP + FP + FN)."""
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def iou(self) -> float:
        """TP / (TP + FP + FN), the Jaccard index."""
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    def precision(self) -> float:
        """TP / (TP + FP), positive predictive value."""
        return self._ratio(self.tp, self.tp + self.fp)

    def recall(self) -> float:
        """TP / (TP + FN), sensitivity."""
        return self._ratio(self.tp, self.tp + self.fn)


def confusion(pred: object, ref: object) -> Confusion:
    """Voxel counts TP, FP, FN of ``pred`` against ``ref`` (binary masks of equal shape)."""
    p, r = as_mask(pred, "pred"), as_mask(ref, "ref")
    check_pair(p, r)
    n_pred, n_ref = int(np.count_nonzero(p)), int(np.count_nonzero(r))
    tp = int(np.count_nonzero(p & r))
    return Confusion(tp=tp, fp=n_pred - tp, fn=n_ref - tp)


def dice(pred: object, ref: object) -> float:
    """Dice similarity coefficient 2|P∩R| / (|P| + |R|) (both empty: 1, one empty: 0)."""
    return confusion(pred, ref).dice()


def iou(pred: object, ref: object) -> float:
    """Intersection over union |P and R| / |P or R| (Jaccard; both empty 1, one empty 0)."""
    return confusion(pred, ref).iou()


jaccard = iou


def precision(pred: object, ref: object) -> float:
    """|P∩R| / |P| (both empty: 1, one empty: 0)."""
    return confusion(pred, ref).precision()


def recall(pred: object, ref: object) -> float:
    """|P∩R| / |R|, sensitivity (both empty: 1, one empty: 0)."""
    return confusion(pred, ref).recall()
