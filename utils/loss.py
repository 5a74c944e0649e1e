"""The Focal Loss family of the paper, Section III: L_f (Eq. 2), L_h (Eq. 3), their poly-1 forms (Eq. 5), and Mask
Focal Loss L_m (Eq. 6) with its poly-1 form L_m^P1 (Eq. 7).

All three functions take raw logits, never probabilities, and compute in float32 whatever the input dtype. Each returns
the sum over cells scaled by -alpha/N, N being `num_objects` or, when not given, the number of heatmap peaks (cells
equal to 1), clamped to at least 1.

Numerical stability, for logits anywhere in [-100, 100] in fp32 and fp16:
- log(p) and log(1 - p) are `logsigmoid(x)` and `logsigmoid(-x)`, finite for every finite x; (1 - p) is
  `sigmoid(-x)`, never computed as 1 - sigmoid(x), so it keeps its precision where p is close to 1.
- log(1 - Δp) with Δp = |p - p̂| is never formed from 1 - Δp. Writing q = 1 - p̂:
    p̂ >= p:  1 - Δp = q + p        so log(1 - Δp) = logaddexp(log q, log p)
    p̂ <  p:  1 - Δp = (1 - p) + p̂  so log(1 - Δp) = logaddexp(log(1 - p), log p̂)
  Both are sums of non-negative terms, so there is no cancellation, and 1 - Δp >= min(p, 1 - p) > 0 for p in (0, 1).
  At p = 1 the second form gives log p̂ exactly and the first log(q + 1) (the case p̂ >= 1 only arises when sigmoid
  rounds to 1, where both are 0). At p = 0 (mask = 1 where the Gaussian underflowed) the first form gives log q
  exactly. logaddexp's arguments are never both -inf because log q and log p̂ are finite, so value and gradient are
  finite everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _normaliser(num_objects: int | float | torch.Tensor | None, heatmap: torch.Tensor) -> torch.Tensor:
    """Return N of Eqs. 2-7: the given object count or the number of heatmap peaks, at least 1."""
    n = (heatmap == 1).sum() if num_objects is None else torch.as_tensor(num_objects, device=heatmap.device)
    return n.float().clamp(min=1.0)


def _log_one_minus_delta(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Stable log(1 - |p - sigmoid(x)|); see the module docstring for the derivation."""
    log_q, log_p_hat = F.logsigmoid(-x), F.logsigmoid(x)
    above = torch.logaddexp(log_q, torch.log(p))  # p̂ >= p
    below = torch.logaddexp(torch.log1p(-p), log_p_hat)  # p̂ < p
    return torch.where(torch.sigmoid(x) >= p, above, below)


def _negative(x: torch.Tensor, gamma: float, poly: bool) -> torch.Tensor:
    """Focal negative term p̂^γ log(1 - p̂), minus p̂^(γ+1) in the poly-1 form (Eqs. 2, 5, 6, 7)."""
    p_hat, log_q = torch.sigmoid(x), F.logsigmoid(-x)
    return p_hat.pow(gamma) * (log_q - p_hat if poly else log_q)


def _positive(x: torch.Tensor, gamma: float, poly: bool) -> torch.Tensor:
    """Focal positive term (1 - p̂)^γ log p̂, minus (1 - p̂)^(γ+1) in the poly-1 form (Eqs. 2, 3, 5)."""
    q, log_p_hat = torch.sigmoid(-x), F.logsigmoid(x)
    return q.pow(gamma) * (log_p_hat - q if poly else log_p_hat)


def _total(negatives: torch.Tensor, is_pos: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Σ over cells: the negative term where not positive plus the positive terms (computed on positives only).

    Positives are a small fraction of the cells, so their costlier terms are evaluated on the gathered subset.
    """
    return negatives.masked_fill(is_pos, 0.0).sum() + positives.sum()


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    poly: bool = False,
    num_objects: int | float | torch.Tensor | None = None,
) -> torch.Tensor:
    """α-Focal Loss L_f on a binary feature map (Eq. 2); with `poly=True`, its poly-1 form (Eq. 5 without β).

    Args:
        logits (torch.Tensor): Raw predictions of any shape.
        target (torch.Tensor): Binary ground truth of the same shape; cells equal to 1 are positives.
        alpha (float): Scale α of the sum.
        gamma (float): Focusing exponent γ.
        poly (bool): Subtract the first poly term (1 - p_t)^(γ+1) inside the sum (Eq. 5 with ε1 = 1).
        num_objects (int | float | torch.Tensor, optional): N; defaults to the number of positive cells.

    Returns:
        (torch.Tensor): Scalar loss.
    """
    x, t = logits.float(), target.float()
    pos = t == 1
    total = _total(_negative(x, gamma, poly), pos, _positive(x[pos], gamma, poly))
    return -alpha * total / _normaliser(num_objects, t)


def heatmap_focal_loss(
    logits: torch.Tensor,
    heatmap: torch.Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 4.0,
    gamma: float = 2.0,
    poly: bool = False,
    num_objects: int | float | torch.Tensor | None = None,
) -> torch.Tensor:
    """CenterNet/CornerNet heatmap focal loss L_h (Eq. 3); with `poly=True`, its poly-1 form (Eq. 5).

    Positives are the cells where the heatmap equals 1; every other cell is a negative weighted by (1 - p)^β.

    Args:
        logits (torch.Tensor): Raw predictions of any shape.
        heatmap (torch.Tensor): Gaussian heatmap ground truth p in [0, 1], same shape.
        alpha (float): Scale α of the sum.
        beta (float): Exponent β of the negative weight (1 - p)^β.
        gamma (float): Focusing exponent γ.
        poly (bool): Use the poly-1 form of Eq. 5.
        num_objects (int | float | torch.Tensor, optional): N; defaults to the number of heatmap peaks.

    Returns:
        (torch.Tensor): Scalar loss.
    """
    x, p = logits.float(), heatmap.float()
    peak = p == 1
    negatives = (1 - p).pow(beta) * _negative(x, gamma, poly)
    return -alpha * _total(negatives, peak, _positive(x[peak], gamma, poly)) / _normaliser(num_objects, p)


def mask_focal_loss(
    logits: torch.Tensor,
    heatmap: torch.Tensor,
    mask: torch.Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 0.5,
    gamma: float = 4.0,
    poly: bool = False,
    num_objects: int | float | torch.Tensor | None = None,
    alpha_neg: float | None = None,
) -> torch.Tensor:
    """Mask Focal Loss L_m (Eq. 6); with `poly=True`, L_m^P1 exactly as Eq. 7 is printed.

    Inside the mask the error Δp = |p - p̂| to the heatmap is penalised; outside it the cell is a plain focal negative:

        L_m    = -α/N Σ { p^β Δp^γ log(1 - Δp)                  mask = 1
                        { p̂^γ log(1 - p̂)                        mask = 0
        L_m^P1 = -α/N Σ { Δp^γ log(1 - Δp) - p^β Δp^(γ+1)       mask = 1
                        { p̂^γ log(1 - p̂) - p̂^(γ+1)              mask = 0

    Note that in Eq. 7, as printed in the paper, β weights only the poly term, whereas in Eq. 6 it weights the
    log term; both are implemented as printed. γ >= 1 keeps the gradient of Δp^γ finite at Δp = 0.

    Reductions (tested): with a binary heatmap equal to the mask, L_m equals L_f for any β (p^β = 1 on positives).
    With the mask reduced to the key points (heatmap == 1), L_m equals L_h only when L_h's negative weight
    (1 - p)^β is 1, i.e. β = 0 in L_h: the paper states this reduction without that condition, but L_h
    down-weights the near-centre negatives that L_m's mask = 0 branch does not.

    Args:
        logits (torch.Tensor): Raw predictions of any shape.
        heatmap (torch.Tensor): Gaussian heatmap ground truth p in [0, 1], same shape.
        mask (torch.Tensor): Box-region mask (bool or 0/1), same shape; heatmap must be 0 where mask is 0.
        alpha (float): Scale α of the sum.
        beta (float): Exponent β of the heatmap weight p^β.
        gamma (float): Focusing exponent γ (>= 1).
        poly (bool): Use the poly-1 form L_m^P1 (Eq. 7).
        num_objects (int | float | torch.Tensor, optional): N; defaults to the number of heatmap peaks.
        alpha_neg (float, optional): Scale of the mask = 0 branch instead of α: RetinaNet's balance (α inside the
            mask, 1 - α outside) rather than Eq. 6's single global α. None keeps the equation as printed.

    Returns:
        (torch.Tensor): Scalar loss.
    """
    x, p, inside = logits.float(), heatmap.float(), mask.bool()
    xi, pi = x[inside], p[inside]
    delta = (pi - torch.sigmoid(xi)).abs()
    log_term = delta.pow(gamma) * _log_one_minus_delta(xi, pi)
    weight = pi.pow(beta)  # 0^0 = 1 in torch, so β = 0 gives weight 1 everywhere
    positives = log_term - weight * delta.pow(gamma + 1) if poly else weight * log_term  # Eq. 7 / Eq. 6
    negatives = _negative(x, gamma, poly) * (1.0 if alpha_neg is None else alpha_neg / alpha)
    return -alpha * _total(negatives, inside, positives) / _normaliser(num_objects, p)
