"""α·CE + β·Dice: exact zero on perfect predictions, finite gradients, deep supervision."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.train.losses import DiceCELoss, soft_dice_loss


def _perfect(target: torch.Tensor, k: int = 3) -> torch.Tensor:
    return 100.0 * F.one_hot(target, k).movedim(-1, 1).float()


def test_dice_loss_perfect_is_zero() -> None:
    target = torch.randint(0, 3, (2, 9, 11))
    assert float(soft_dice_loss(_perfect(target), target)) == pytest.approx(0.0, abs=1e-6)
    # a class absent from prediction and reference counts as perfect, not NaN
    target[target == 2] = 1
    assert float(soft_dice_loss(_perfect(target), target)) == pytest.approx(0.0, abs=1e-6)


def test_dice_loss_worst_is_one() -> None:
    target = torch.ones(1, 4, 4, dtype=torch.long)
    assert float(soft_dice_loss(_perfect(torch.zeros_like(target), 2), target)) == pytest.approx(1.0, abs=1e-4)


def test_combined_loss_value_and_gradients() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, 5, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8, 5))
    loss = DiceCELoss(alpha=0.5, beta=2.0)(logits, target)
    expected = 0.5 * F.cross_entropy(logits, target) + 2.0 * soft_dice_loss(logits, target)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_gradients_finite_on_saturated_logits() -> None:
    target = torch.randint(0, 3, (1, 6, 6))
    logits = (-_perfect(target) * 10).requires_grad_()
    DiceCELoss()(logits, target).backward()
    assert torch.isfinite(logits.grad).all()


def test_deep_supervision_weights_and_downsampling() -> None:
    target = torch.randint(0, 2, (2, 16, 16))
    outs = [_perfect(target, 2), _perfect(target[:, ::2, ::2], 2), torch.zeros(2, 2, 4, 4)]
    loss_fn = DiceCELoss()
    total = loss_fn(outs, target)
    coarse = loss_fn.single(outs[2], F.interpolate(target[:, None].float(), size=(4, 4), mode="nearest")[:, 0].long())
    assert float(total) == pytest.approx(float(coarse) * 0.25 / 1.75, rel=1e-4)


@pytest.mark.parametrize("alpha,beta", [(-1, 1), (0, 0)])
def test_bad_weights(alpha: float, beta: float) -> None:
    with pytest.raises(ValueError):
        DiceCELoss(alpha, beta)


def test_per_case_dice_is_the_mean_of_each_samples_dice() -> None:
    torch.manual_seed(1)
    logits = torch.randn(3, 3, 10, 12)
    target = torch.randint(0, 3, (3, 10, 12))
    per_case = soft_dice_loss(logits, target, batch=False)
    singles = torch.stack([soft_dice_loss(logits[i:i + 1], target[i:i + 1]) for i in range(3)])
    assert torch.allclose(per_case, singles.mean(), atol=1e-6)
    assert torch.allclose(soft_dice_loss(logits[:1], target[:1], batch=False), singles[0], atol=1e-6)
    assert float(soft_dice_loss(_perfect(target), target, batch=False)) == pytest.approx(0.0, abs=1e-6)


def test_per_case_dice_weighs_a_missed_small_lesion_like_a_large_one() -> None:
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[0, 2:30, 2:30] = 1  # a large lesion, found
    target[1, 5:8, 5:8] = 1  # a small lesion, missed
    pred = target.clone()
    pred[1] = 0
    batch = float(soft_dice_loss(_perfect(pred, 2), target))
    case = float(soft_dice_loss(_perfect(pred, 2), target, batch=False))
    assert batch < 0.02 and case == pytest.approx(0.5, abs=1e-3)
    loss = DiceCELoss(alpha=0.0, batch_dice=False)(_perfect(pred, 2), target)
    assert float(loss) == pytest.approx(case, abs=1e-6)
