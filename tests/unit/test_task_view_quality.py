"""benchmarks/task_view_quality.py's measures, by hand on a cube; and the fact behind issue #14's Lambda30 result:
DTC's level-set view of a perfect level set (the SDF target itself) leaves out the class's whole inner boundary."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTask
from nnunetv2_dtc.sdf import compute_sdf

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))
from task_view_quality import FOREGROUND_THRESHOLD, inner_boundary, region_masks, region_medians, \
    view_metrics  # noqa: E402


def _cube() -> np.ndarray:
    mask = np.zeros((7, 7, 7), dtype=bool)
    mask[2:5, 2:5, 2:5] = True  # 27 voxels: 26 on the inner boundary around 1 interior voxel
    return mask


def test_inner_boundary_and_view_metrics_by_hand():
    reference = _cube()
    assert inner_boundary(reference).sum() == 26 and not inner_boundary(reference)[3, 3, 3]
    centre = np.zeros_like(reference)
    centre[3, 3, 3] = True
    assert view_metrics(centre, reference) == pytest.approx(
        {'dice': 2 / 28, 'volume_ratio': 1 / 27, 'inner_boundary_called': 0.0})
    grown = reference.copy()
    grown[1, 2:5, 2:5] = True  # 9 voxels more, outside
    assert view_metrics(grown, reference) == pytest.approx(
        {'dice': 54 / 63, 'volume_ratio': 36 / 27, 'inner_boundary_called': 1.0})
    assert np.isnan(view_metrics(centre, np.zeros_like(reference))['dice'])


def test_the_level_set_view_of_the_sdf_target_itself_misses_the_whole_inner_boundary():
    """The SDF is 0 on the inner boundary, so sigmoid(-k * 0) = 0.5 there: not foreground. On the cube that is 26 of
    its 27 voxels; on Hippocampus labels 36 to 55 % of each class (docs/variants.md)."""
    reference = _cube()
    sdf = torch.from_numpy(compute_sdf(reference.astype(np.int16), [1]))
    raw = torch.atanh(sdf.clamp(-0.999999, 0.999999))[None]  # tanh(raw) is the target
    view, _ = LevelSetTask().consistency_views(raw, torch.zeros_like(raw))
    called = view[0, 0].numpy() > FOREGROUND_THRESHOLD
    assert view[0, 0][torch.from_numpy(inner_boundary(reference))].eq(0.5).all()
    assert view_metrics(called, reference) == pytest.approx(
        {'dice': 2 / 28, 'volume_ratio': 1 / 27, 'inner_boundary_called': 0.0})


def test_region_medians_by_hand_on_the_cube():
    """Interior 1 voxel, inner boundary 26, first outside layer 6 faces x 9 = 54; far outside: L1 distance > 3 from the
    cube. An output that is the L1 distance to the cube (0 inside) gives medians 0, 0, 1 and > 3; a cube filling the
    image has no outside regions (NaN)."""
    reference = _cube()
    grid = np.indices(reference.shape)
    l1_distance = sum(np.clip(2 - g, 0, None) + np.clip(g - 4, 0, None) for g in grid).astype(float)
    medians = region_medians(l1_distance, reference)
    assert medians['interior'] == 0 and medians['inner_boundary'] == 0 and medians['outside_1'] == 1
    assert medians['far_outside'] == np.median(l1_distance[l1_distance > 3]) and medians['far_outside'] > 3
    counts = {region: int(mask.sum()) for region, mask in region_masks(reference).items()}
    assert counts == {'interior': 1, 'inner_boundary': 26, 'outside_1': 54,
                      'far_outside': int((l1_distance > 3).sum())}
    full = region_medians(np.zeros((3, 3, 3)), np.ones((3, 3, 3), dtype=bool))
    assert np.isnan(full['outside_1']) and np.isnan(full['far_outside']) and full['interior'] == 0
