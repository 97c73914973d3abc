"""DTC's two extra loss terms and its consistency ramp-up (Luo et al., AAAI 2021; official code train_la_dtc.py)."""
from typing import Optional

import numpy as np
import torch

# Defaults of the official DTC code (train_la_dtc.py and utils/ramps.py).
DEFAULT_SDF_LOSS_WEIGHT = 0.3  # beta
DEFAULT_LEVEL_SET_SHARPNESS = 1500.0  # k in sigmoid(-k * level_set)
DEFAULT_MAX_CONSISTENCY_WEIGHT = 1.0  # lambda_max
SIGMOID_RAMPUP_STEEPNESS = 5.0  # exp(-5 (1 - t/T)^2), Laine & Aila 2017, as used by DTC


def sigmoid_rampup_weight(step: float, rampup_length: float, max_weight: float) -> float:
    """lambda(t) = max_weight * exp(-5 (1 - t/T)^2), t clipped to [0, T]; T <= 0 means no ramp-up."""
    if rampup_length <= 0:
        return float(max_weight)
    phase = 1.0 - float(np.clip(step, 0.0, rampup_length)) / rampup_length
    return float(max_weight * np.exp(-SIGMOID_RAMPUP_STEEPNESS * phase * phase))


def level_set_to_probability(level_set: torch.Tensor, sharpness: float) -> torch.Tensor:
    """DTC's smooth approximation of the Heaviside function that maps a level set to a foreground probability."""
    return torch.sigmoid(-sharpness * level_set)


def foreground_probabilities(seg_logits: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """Probability of each foreground class (softmax without the background channel) or region (sigmoid)."""
    if has_regions:
        return torch.sigmoid(seg_logits)
    return torch.softmax(seg_logits, 1)[:, 1:]


def sdf_loss(level_set: torch.Tensor, sdf_target: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """MSE between predicted level set and SDF target; `valid` (broadcastable bool) excludes voxels such as the
    ignore label."""
    squared_error = (level_set - sdf_target) ** 2
    if valid is None:
        return squared_error.mean()
    valid = valid.expand_as(squared_error)
    return squared_error[valid].sum() / valid.sum().clamp_min(1)


def consistency_squared_error_sum(level_set: torch.Tensor, seg_logits: torch.Tensor, has_regions: bool,
                                  sharpness: float) -> torch.Tensor:
    """sum((sigmoid(-k * level_set) - p)^2) over all samples, channels and voxels, computed in float32."""
    with torch.autocast(level_set.device.type, enabled=False):
        from_level_set = level_set_to_probability(level_set.float(), sharpness)
        probabilities = foreground_probabilities(seg_logits.float(), has_regions)
        return torch.sum((from_level_set - probabilities) ** 2)


def dual_task_consistency_loss(level_set: torch.Tensor, seg_logits: torch.Tensor, has_regions: bool,
                               sharpness: float) -> torch.Tensor:
    """mean((sigmoid(-k * level_set) - p)^2) over all samples, channels and voxels, computed in float32."""
    return consistency_squared_error_sum(level_set, seg_logits, has_regions, sharpness) / level_set.numel()
