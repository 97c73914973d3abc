"""Segmentation metrics against hand-derived values, read with nnU-Net's SimpleITK reader from files with an
anisotropic spacing."""
import json
import math
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import pytest
import SimpleITK as sitk

from nnunetv2_dtc.benchmark.metrics import LARGEST_COMPONENT, NO_POSTPROCESSING, MetricsInputError, case_metrics, \
    folder_metrics, mask_metrics

SPACING = (3.0, 0.5, 0.8)  # mm, in numpy axis order (z, y, x) as nnU-Net reads it
SHAPE = (6, 6, 8)
DATASET_JSON = {'channel_names': {'0': 'MRI'}, 'labels': {'background': 0, 'target': 1}, 'numTraining': 2,
                'file_ending': '.nii.gz'}
# float32 distances from MONAI
DISTANCE_TOLERANCE = 1e-6

# Two 2x2x2 cubes, the prediction moved by one voxel along z and y. Every voxel of such a cube is a surface voxel
# (each has neighbours outside). Reference voxels: z, y in {1, 2}; prediction voxels: z, y in {2, 3}; x in {1, 2}
# for both. The prediction's voxels at (z, y) =
#   (2, 2): inside the reference                       -> 0
#   (2, 3): one step along y from the reference (2, 2)  -> 0.5 mm, 1 voxel
#   (3, 2): one step along z                            -> 3 mm, 1 voxel
#   (3, 3): one step along z and y                      -> sqrt(3^2 + 0.5^2) mm, sqrt(2) voxels
# each for x = 1 and 2, and by symmetry the same from the reference to the prediction. HD95 interpolates the 8 sorted
# values of each direction at 0.95 * 7 = 6.65, between the two largest, which are equal; ASD is the mean.
REFERENCE_CORNER, PREDICTION_CORNER = (1, 1, 1), (2, 2, 1)
EXPECTED_DICE = 2 * 2 / (8 + 8)  # 2 voxels in common: (z, y) = (2, 2), x = 1, 2
EXPECTED_IOU = 2 / (8 + 8 - 2)
EXPECTED_HD95_MM = math.sqrt(3.0 ** 2 + 0.5 ** 2)
EXPECTED_ASD_MM = (0 + 0.5 + 3.0 + EXPECTED_HD95_MM) / 4
EXPECTED_HD95_VOXELS = math.sqrt(2)
EXPECTED_ASD_VOXELS = (0 + 1 + 1 + math.sqrt(2)) / 4


def cube(corner: Tuple[int, int, int], label: int = 1, size: int = 2, shape: Sequence[int] = SHAPE) -> np.ndarray:
    segmentation = np.zeros(shape, dtype=np.uint8)
    segmentation[tuple(slice(c, c + size) for c in corner)] = label
    return segmentation


def write_segmentation(file: Path, segmentation: np.ndarray, spacing: Sequence[float] = SPACING) -> str:
    image = sitk.GetImageFromArray(segmentation.astype(np.uint8))
    image.SetSpacing([float(s) for s in reversed(spacing)])
    sitk.WriteImage(image, str(file), True)
    return str(file)


def test_two_cubes_at_a_known_offset_with_anisotropic_spacing(tmp_path):
    result = case_metrics(write_segmentation(tmp_path / 'prediction.nii.gz', cube(PREDICTION_CORNER)),
                          write_segmentation(tmp_path / 'reference.nii.gz', cube(REFERENCE_CORNER)), [1])
    assert result['spacing'] == pytest.approx(SPACING) and result['postprocessing'] == NO_POSTPROCESSING
    metrics = result['metrics']['1']
    assert metrics['status'] == 'ok' and (metrics['n_prediction'], metrics['n_reference']) == (8, 8)
    assert metrics['Dice'] == EXPECTED_DICE and metrics['IoU'] == pytest.approx(EXPECTED_IOU, abs=1e-15)
    assert metrics['HD95_mm'] == pytest.approx(EXPECTED_HD95_MM, rel=DISTANCE_TOLERANCE)
    assert metrics['ASD_mm'] == pytest.approx(EXPECTED_ASD_MM, rel=DISTANCE_TOLERANCE)
    assert metrics['HD95_voxels'] == pytest.approx(EXPECTED_HD95_VOXELS, rel=DISTANCE_TOLERANCE)
    assert metrics['ASD_voxels'] == pytest.approx(EXPECTED_ASD_VOXELS, rel=DISTANCE_TOLERANCE)


def test_empty_masks_get_a_status_and_no_distance(tmp_path):
    reference = cube((1, 1, 1), label=1) + cube((1, 1, 5), label=2)
    prediction = cube((1, 1, 1), label=1) + cube((3, 3, 5), label=3)
    metrics = case_metrics(write_segmentation(tmp_path / 'prediction.nii.gz', prediction),
                           write_segmentation(tmp_path / 'reference.nii.gz', reference), [1, 2, 3, 4])['metrics']
    assert {k: metrics['1'][k] for k in ('status', 'Dice', 'IoU', 'HD95_mm', 'ASD_voxels')} == \
        {'status': 'ok', 'Dice': 1.0, 'IoU': 1.0, 'HD95_mm': 0.0, 'ASD_voxels': 0.0}
    for key, status, dice in (('2', 'empty_prediction', 0.0), ('3', 'empty_reference', 0.0), ('4', 'both_empty', 1.0)):
        assert (metrics[key]['status'], metrics[key]['Dice'], metrics[key]['IoU']) == (status, dice, dice)
        assert [metrics[key][m] for m in ('HD95_mm', 'ASD_mm', 'HD95_voxels', 'ASD_voxels')] == [None] * 4


def test_largest_component_postprocessing_removes_a_stray_voxel(tmp_path):
    reference = cube((1, 1, 1))
    prediction = reference.copy()
    prediction[1, 1, 5] = 1  # 3 voxels along x from the cube's (1, 1, 2): 2.4 mm
    files = (write_segmentation(tmp_path / 'prediction.nii.gz', prediction),
             write_segmentation(tmp_path / 'reference.nii.gz', reference))
    plain = case_metrics(*files, [1])['metrics']['1']
    # prediction to reference: 8 zeros and 3 voxels, 95th percentile at 0.95 * 8 = 7.6 -> 0.6 * 3; the reference to
    # the prediction: 8 zeros. ASD: 3 over the 9 + 8 surface voxels.
    assert plain['Dice'] == 2 * 8 / (9 + 8)
    assert plain['HD95_voxels'] == pytest.approx(0.6 * 3, rel=DISTANCE_TOLERANCE)
    assert plain['HD95_mm'] == pytest.approx(0.6 * 3 * 0.8, rel=DISTANCE_TOLERANCE)
    assert plain['ASD_voxels'] == pytest.approx(3 / 17, rel=DISTANCE_TOLERANCE)

    postprocessed = case_metrics(*files, [1], postprocess_largest_component=True)
    assert postprocessed['postprocessing'] == LARGEST_COMPONENT
    assert {k: postprocessed['metrics']['1'][k] for k in ('Dice', 'n_prediction', 'HD95_voxels', 'ASD_mm')} == \
        {'Dice': 1.0, 'n_prediction': 8, 'HD95_voxels': 0.0, 'ASD_mm': 0.0}


def test_2d_images_have_no_surface_along_the_singleton_axis():
    """nnU-Net reads 2d images as 1 x Y x X with a huge first spacing. 3x3 squares, the prediction moved by one pixel
    along x (0.5 mm): the centre pixels are not surface pixels, and 4 of the 8 surface pixels on each side are 0.5 mm
    from the other surface. Counting every pixel as surface (eroding across the singleton axis) gives ASD 1/6 mm."""
    reference, prediction = np.zeros((1, 5, 6), dtype=bool), np.zeros((1, 5, 6), dtype=bool)
    reference[0, 1:4, 1:4] = True
    prediction[0, 1:4, 2:5] = True
    metrics = mask_metrics(prediction, reference, (999.0, 2.0, 0.5))
    assert (metrics['HD95_mm'], metrics['ASD_mm'], metrics['HD95_voxels'], metrics['ASD_voxels']) == \
        (0.5, 0.25, 1.0, 0.5)


def test_folder_metrics_summarise_per_class_and_count_missing_distances(tmp_path):
    predictions, references = tmp_path / 'predictions', tmp_path / 'references'
    predictions.mkdir()
    references.mkdir()
    write_segmentation(references / 'case_a.nii.gz', cube(REFERENCE_CORNER))
    write_segmentation(predictions / 'case_a.nii.gz', cube(PREDICTION_CORNER))
    write_segmentation(references / 'case_b.nii.gz', cube(REFERENCE_CORNER))
    write_segmentation(predictions / 'case_b.nii.gz', np.zeros(SHAPE))
    write_segmentation(predictions / 'not_a_test_case.nii.gz', np.zeros(SHAPE))

    result = folder_metrics(str(predictions), str(references), DATASET_JSON, num_processes=1)
    json.dumps(result, allow_nan=False)
    assert [c['case_id'] for c in result['metric_per_case']] == ['case_a', 'case_b']
    assert result['postprocessing'] == NO_POSTPROCESSING and result['labels_or_regions'] == ['1']
    target = result['per_class']['1']
    assert target['Dice'] == {'mean': EXPECTED_DICE / 2, 'std': EXPECTED_DICE / 2, 'n': 2, 'n_none': 0}
    assert target['HD95_mm']['mean'] == pytest.approx(EXPECTED_HD95_MM, rel=DISTANCE_TOLERANCE)
    assert (target['HD95_mm']['std'], target['HD95_mm']['n'], target['HD95_mm']['n_none']) == (0.0, 1, 1)
    assert target['status_counts'] == {'ok': 1, 'both_empty': 0, 'empty_prediction': 1, 'empty_reference': 0}
    assert result['foreground_mean']['Dice'] == EXPECTED_DICE / 2

    (predictions / 'case_b.nii.gz').unlink()
    with pytest.raises(MetricsInputError, match=r'1 of the 2 reference case\(s\) in .* have no prediction in .*: '
                                                r'case_b.nii.gz. Predict all of them'):
        folder_metrics(str(predictions), str(references), DATASET_JSON, num_processes=1)
