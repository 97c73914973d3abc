import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from nnunetv2_dtc import compute_sdf

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from sdf_reference import reference_sdf  # noqa: E402

TOLERANCE = 1e-6


def brute_force_sdf(segmentation, region, zero_inner_boundary=True):
    """Slow independent SDF: all-pairs distances and an explicit face-neighbour boundary check."""
    inside = np.isin(segmentation, region)
    if not inside.any():
        return np.zeros(segmentation.shape)
    if inside.all():
        return np.full(segmentation.shape, -1.0)
    coords = np.indices(segmentation.shape).reshape(segmentation.ndim, -1).T.astype(float)
    pairwise = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    flat = inside.ravel()
    to_outside = np.where(~flat[None, :], pairwise, np.inf).min(1)
    to_inside = np.where(flat[None, :], pairwise, np.inf).min(1)
    posdis = np.where(flat, to_outside, 0.0).reshape(segmentation.shape)
    negdis = np.where(flat, 0.0, to_inside).reshape(segmentation.shape)
    sdf = negdis / negdis.max() - posdis / posdis.max()
    if not zero_inner_boundary:
        return sdf
    for index in np.ndindex(segmentation.shape):
        if inside[index] and _has_outside_face_neighbour(inside, index):
            sdf[index] = 0.0
    return sdf


def _has_outside_face_neighbour(inside, index):
    for axis, step in product(range(inside.ndim), (-1, 1)):
        neighbour = list(index)
        neighbour[axis] += step
        if 0 <= neighbour[axis] < inside.shape[axis] and not inside[tuple(neighbour)]:
            return True
    return False


def assert_matches_brute_force(segmentation, labels, zero_inner_boundary=True):
    result = compute_sdf(segmentation, labels, zero_inner_boundary=zero_inner_boundary)
    assert result.dtype == np.float32
    assert result.shape == (len(labels), *segmentation.shape)
    for channel, entry in zip(result, labels):
        region = [entry] if isinstance(entry, int) else list(entry)
        np.testing.assert_allclose(channel, brute_force_sdf(segmentation, region, zero_inner_boundary),
                                   atol=TOLERANCE, rtol=0)
    return result


def random_labels(shape, num_classes, seed, smoothing=2.0):
    """Smooth random blobs: the argmax of smoothed noise, background where all are low."""
    rng = np.random.default_rng(seed)
    fields = np.stack([gaussian_filter(rng.standard_normal(shape), smoothing) for _ in range(num_classes + 1)])
    return np.argmax(fields, axis=0).astype(np.uint8)


def test_2d_single_class():
    segmentation = np.zeros((7, 9), dtype=np.uint8)
    segmentation[1:5, 2:7] = 1
    segmentation[3, 7] = 1
    result = assert_matches_brute_force(segmentation, [1])
    assert result[0, 1, 2] == 0  # inner boundary
    assert result[0, 6, 0] == 1  # farthest outside voxel
    assert result[0, 2, 4] == -1  # deepest inside voxel


def test_3d_single_class():
    segmentation = np.zeros((6, 7, 8), dtype=np.int16)
    segmentation[1:5, 2:6, 1:7] = 3
    segmentation[2:4, 3:5, 0] = 3
    result = assert_matches_brute_force(segmentation, [3])
    assert result[0].min() == -1 and result[0].max() == 1


def test_3d_several_classes_and_region():
    segmentation = random_labels((6, 7, 8), num_classes=3, seed=1, smoothing=1.0)
    assert set(np.unique(segmentation)) == {0, 1, 2, 3}
    assert_matches_brute_force(segmentation, [1, 2, 3, (1, 2), (1, 2, 3)])


def test_2d_region_is_union():
    segmentation = np.zeros((7, 9), dtype=np.uint8)
    segmentation[1:4, 1:4] = 1
    segmentation[1:4, 4:7] = 2
    result = assert_matches_brute_force(segmentation, [(1, 2), 1])
    # (2, 3) is on the border between labels 1 and 2: inside the union, on the boundary of 1.
    assert result[0, 2, 3] < 0 and result[1, 2, 3] == 0


def test_empty_class_is_zero():
    segmentation = random_labels((7, 9), num_classes=1, seed=2)
    result = compute_sdf(segmentation, [1, 5, (6, 7)])
    assert np.any(result[0] != 0)
    assert np.all(result[1:] == 0)


@pytest.mark.parametrize("shape", [(7, 9), (6, 7, 8)])
def test_all_foreground_is_minus_one(shape):
    segmentation = np.ones(shape, dtype=np.uint8)
    result = compute_sdf(segmentation, [1, (0, 1)])
    assert np.all(np.isfinite(result))
    assert np.all(result == -1)


@pytest.mark.parametrize("shape, voxel", [((7, 9), (3, 4)), ((6, 7, 8), (0, 6, 2))])
def test_single_voxel_object(shape, voxel):
    segmentation = np.zeros(shape, dtype=np.uint8)
    segmentation[voxel] = 1
    result = assert_matches_brute_force(segmentation, [1])
    assert result[(0, *voxel)] == 0
    assert result.max() == 1 and result.min() == 0


def test_object_touching_border_is_not_cut_by_it():
    segmentation = np.zeros((7, 9), dtype=np.uint8)
    segmentation[:4, :] = 1
    result = assert_matches_brute_force(segmentation, [1])
    # The image border is not background: row 0 is 4 voxels from the outside, the deepest inside.
    np.testing.assert_array_equal(result[0, 0], -1)
    np.testing.assert_allclose(result[0, 2], -0.5)
    np.testing.assert_array_equal(result[0, 3], 0)
    np.testing.assert_allclose(result[0, 4], 1 / 3)


def test_bare_int_label():
    segmentation = random_labels((7, 9), num_classes=2, seed=3)
    np.testing.assert_array_equal(compute_sdf(segmentation, 2), compute_sdf(segmentation, [2]))


def test_non_contiguous_input_and_threads():
    segmentation = random_labels((20, 24, 16), num_classes=2, seed=4)
    view = segmentation.transpose(2, 0, 1)[:, ::2]
    expected = reference_sdf(np.ascontiguousarray(view), [1, 2])
    np.testing.assert_allclose(compute_sdf(view, [1, 2], parallel=2), expected, atol=TOLERANCE, rtol=0)


def test_rejects_1d():
    with pytest.raises(ValueError):
        compute_sdf(np.zeros(5, dtype=np.uint8), [1])


@pytest.mark.parametrize("shape, seed", [((40, 50), 5), ((24, 28, 20), 6), ((30, 20, 25), 7)])
def test_matches_dtc_reference_on_random_blobs(shape, seed):
    segmentation = random_labels(shape, num_classes=3, seed=seed)
    labels = [1, 2, 3, (1, 3)]
    result = compute_sdf(segmentation, labels)
    expected = reference_sdf(segmentation, labels)
    assert np.all(np.isfinite(result))
    assert np.any(result == 0) and result.min() == -1 and result.max() == 1
    np.testing.assert_allclose(result, expected, atol=TOLERANCE, rtol=0)


def test_negative_boundary_keeps_the_inner_boundary_distance_by_hand():
    """A 1x7 row with foreground at columns 1-4: inside distances 1, 2, 2, 1 (max 2), outside 1 and 1, 2 (max 2)."""
    segmentation = np.array([[0, 1, 1, 1, 1, 0, 0]], dtype=np.uint8)
    np.testing.assert_allclose(compute_sdf(segmentation, [1], zero_inner_boundary=False)[0, 0],
                               [0.5, -0.5, -1, -1, -0.5, 0.5, 1], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(compute_sdf(segmentation, [1])[0, 0], [0.5, 0, -1, -1, 0, 0.5, 1], atol=TOLERANCE,
                               rtol=0)


def test_negative_boundary_level_set_view_is_the_label_where_dtcs_is_half_on_the_boundary():
    """DTC's level-set view sigmoid(-k * SDF) of the target itself: 0.5 on the inner boundary with DTC's SDF, the label
    map (to 1e-6) without its zeroing."""
    segmentation = random_labels((24, 28, 20), num_classes=2, seed=8)
    inside = np.stack([segmentation == 1, segmentation == 2])
    for zero_inner_boundary in (True, False):
        sdf = compute_sdf(segmentation, [1, 2], zero_inner_boundary=zero_inner_boundary).astype(np.float64)
        view = 1 / (1 + np.exp(np.clip(1500.0 * sdf, -700, 700)))
        if zero_inner_boundary:
            assert np.all(view[sdf == 0] == 0.5) and np.mean(view[inside] == 0.5) > 0.2
        else:
            np.testing.assert_allclose(view, inside, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape, seed", [((7, 9), 9), ((6, 7, 8), 10)])
def test_negative_boundary_matches_brute_force_and_reference(shape, seed):
    segmentation = random_labels(shape, num_classes=2, seed=seed, smoothing=1.0)
    result = assert_matches_brute_force(segmentation, [1, 2, (1, 2)], zero_inner_boundary=False)
    np.testing.assert_allclose(result, reference_sdf(segmentation, [1, 2, (1, 2)], zero_inner_boundary=False),
                               atol=TOLERANCE, rtol=0)
    assert np.all(result[0][segmentation == 1] < 0) and np.all(result[0][segmentation != 1] > 0)


def test_negative_boundary_keeps_empty_and_full_classes():
    segmentation = np.ones((5, 6), dtype=np.uint8)
    np.testing.assert_array_equal(compute_sdf(segmentation, [1, 2], zero_inner_boundary=False),
                                  np.stack([np.full((5, 6), -1.0), np.zeros((5, 6))]))
    single = np.zeros((5, 6), dtype=np.uint8)
    single[2, 3] = 1
    assert compute_sdf(single, [1], zero_inner_boundary=False)[0, 2, 3] == -1
