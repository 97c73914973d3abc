"""Per-case, per-class (or region) segmentation metrics for benchmarks: Dice, IoU, HD95 and ASD in millimetres (with
the image spacing) and the two distances in voxels (spacing 1, as the DTC paper reports them).

Surface distances come from MONAI (`compute_hausdorff_distance`, `compute_average_surface_distance`), not from
hand-written code or medpy:
- maintenance: MONAI is released several times a year by Project MONAI with a large test suite (1.6.1 here). medpy's
  last release, 0.5.2 (July 2024), fixed an `assd` that raised errors in 0.5.0 and 0.5.1; it ships as source only
  and raises on empty masks.
- anisotropic spacing: both compute exact Euclidean distances between surface voxels (those a face-connected erosion
  removes) with the spacing applied per axis. Both matched a brute-force pairwise computation on random blobs with
  spacing (3.0, 0.7, 1.1); the tests check MONAI against hand-derived values.
- dependencies: torch and numpy, which nnU-Net already needs. Importing MONAI takes seconds (it loads all its
  submodules), once per process.
- definitions: HD95 is the larger of the two directed 95th percentiles (as in DeepMind's surface-distance and
  Metrics Reloaded); ASD is symmetric, the mean over the surface voxels of both masks. The DTC paper's code used
  medpy: its `hd95` takes the 95th percentile of both directions pooled (often slightly smaller) and its `asd` is
  directed (prediction to reference), so compare with published numbers accordingly.

Empty masks get a `status` instead of a distance, never a silent 0: 'both_empty' (Dice and IoU 1 by convention),
'empty_prediction' or 'empty_reference' (Dice and IoU 0); the distances are then None. Otherwise the status is 'ok'.
"""
import multiprocessing
import warnings
from itertools import repeat
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from acvl_utils.morphology.morphology_helper import remove_all_but_largest_component
from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json, subfiles
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance
from nnunetv2.configuration import default_num_processes
from nnunetv2.evaluation.evaluate_predictions import label_or_region_to_key, region_or_label_to_mask
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from nnunetv2.utilities.label_handling.label_handling import LabelManager

LabelOrRegion = Union[int, Tuple[int, ...]]

DICE, IOU = 'Dice', 'IoU'
HD95_MM, ASD_MM, HD95_VOXELS, ASD_VOXELS = 'HD95_mm', 'ASD_mm', 'HD95_voxels', 'ASD_voxels'
METRIC_NAMES = (DICE, IOU, HD95_MM, ASD_MM, HD95_VOXELS, ASD_VOXELS)
LOWER_IS_BETTER = frozenset({HD95_MM, ASD_MM, HD95_VOXELS, ASD_VOXELS})
HAUSDORFF_PERCENTILE = 95

STATUS_OK, STATUS_BOTH_EMPTY = 'ok', 'both_empty'
STATUS_EMPTY_PREDICTION, STATUS_EMPTY_REFERENCE = 'empty_prediction', 'empty_reference'
STATUSES = (STATUS_OK, STATUS_BOTH_EMPTY, STATUS_EMPTY_PREDICTION, STATUS_EMPTY_REFERENCE)
NO_POSTPROCESSING, LARGEST_COMPONENT = 'none', 'largest_component'

STD_DDOF = 0  # numpy's default: the spread of the evaluated cases themselves
# NIfTI stores spacings as float32 and exporters may round them; more than this is a different grid
SPACING_RELATIVE_TOLERANCE = 1e-3
# MONAI 1.6 passes its own deprecated `always_return_as_numpy` argument internally, warning on every call
MONAI_INTERNAL_WARNING = '.*always_return_as_numpy.*'


class MetricsInputError(ValueError):
    """Predictions and references that cannot be compared; the message names the files and what to do."""


def mask_metrics(prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float]) -> dict:
    """Metrics of two boolean masks on the same grid, spacing in mm per array axis. Axes of size 1 (nnU-Net's 2d
    images are 1 x Y x X) are dropped first: there is no surface along them."""
    tp = int(np.count_nonzero(prediction & reference))
    n_prediction, n_reference = int(np.count_nonzero(prediction)), int(np.count_nonzero(reference))
    result = {'status': STATUS_OK, DICE: None, IOU: None, **dict.fromkeys(METRIC_NAMES[2:]),
              'n_prediction': n_prediction, 'n_reference': n_reference}
    if n_prediction == 0 or n_reference == 0:
        both_empty = n_prediction == n_reference
        result['status'] = STATUS_BOTH_EMPTY if both_empty else \
            STATUS_EMPTY_PREDICTION if n_prediction == 0 else STATUS_EMPTY_REFERENCE
        result[DICE] = result[IOU] = 1.0 if both_empty else 0.0
        return result
    result[DICE] = 2 * tp / (n_prediction + n_reference)
    result[IOU] = tp / (n_prediction + n_reference - tp)

    spatial_axes = tuple(axis for axis, size in enumerate(reference.shape) if size > 1) or (0,)
    prediction_batch, reference_batch = (_monai_batch(m, spatial_axes) for m in (prediction, reference))
    mm_spacing = [float(spacing[axis]) for axis in spatial_axes]
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message=MONAI_INTERNAL_WARNING, category=FutureWarning)
        for hd95_key, asd_key, axis_spacing in ((HD95_MM, ASD_MM, mm_spacing),
                                                (HD95_VOXELS, ASD_VOXELS, [1.0] * len(spatial_axes))):
            result[hd95_key] = float(compute_hausdorff_distance(
                prediction_batch, reference_batch, percentile=HAUSDORFF_PERCENTILE, spacing=axis_spacing).item())
            result[asd_key] = float(compute_average_surface_distance(
                prediction_batch, reference_batch, symmetric=True, spacing=axis_spacing).item())
    return result


def _monai_batch(mask: np.ndarray, spatial_axes: Tuple[int, ...]) -> torch.Tensor:
    """MONAI's (batch, class, *spatial) layout of one mask, keeping only spatial_axes."""
    squeezed = np.ascontiguousarray(mask).reshape([mask.shape[axis] for axis in spatial_axes])
    return torch.from_numpy(squeezed)[None, None]


def case_metrics(prediction_file: str, reference_file: str, labels_or_regions: Sequence[LabelOrRegion],
                 reader: Optional[BaseReaderWriter] = None, postprocess_largest_component: bool = False,
                 ignore_label: Optional[int] = None) -> dict:
    """{'prediction_file', 'reference_file', 'spacing', 'postprocessing', 'metrics': {str(label or region):
    mask_metrics}} for one case, read with nnU-Net's reader (default SimpleITKIO); spacing from the reference.
    postprocess_largest_component keeps only the largest connected component of each predicted class or region
    (nnU-Net's own function and connectivity) before scoring. Voxels labelled ignore_label in the reference are left
    out of both masks."""
    reader = reader or SimpleITKIO()
    prediction, prediction_properties = reader.read_seg(prediction_file)
    reference, reference_properties = reader.read_seg(reference_file)
    spacing = [float(s) for s in reference_properties['spacing']]
    if prediction.shape != reference.shape:
        raise MetricsInputError(f'{prediction_file} has shape {prediction.shape[1:]} but its reference '
                                f'{reference_file} has {reference.shape[1:]}. Predict at the reference\'s grid (as '
                                f'nnUNetv2_predict exports) before evaluating.')
    if not np.allclose(prediction_properties['spacing'], spacing, rtol=SPACING_RELATIVE_TOLERANCE, atol=0):
        raise MetricsInputError(f'{prediction_file} has spacing {list(prediction_properties["spacing"])} but its '
                                f'reference {reference_file} has {spacing}. Evaluate predictions exported to the '
                                f'reference\'s geometry.')
    prediction, reference = prediction[0], reference[0]
    ignored = reference == ignore_label if ignore_label is not None else np.zeros(reference.shape, dtype=bool)
    metrics = {}
    for label_or_region in labels_or_regions:
        predicted = region_or_label_to_mask(prediction, label_or_region)
        if postprocess_largest_component and predicted.any():
            predicted = remove_all_but_largest_component(predicted)
        metrics[label_or_region_to_key(label_or_region)] = mask_metrics(
            predicted & ~ignored, region_or_label_to_mask(reference, label_or_region) & ~ignored, spacing)
    return {'prediction_file': prediction_file, 'reference_file': reference_file, 'spacing': spacing,
            'postprocessing': LARGEST_COMPONENT if postprocess_largest_component else NO_POSTPROCESSING,
            'metrics': metrics}


def folder_metrics(prediction_folder: str, reference_folder: str, dataset_json: Union[str, dict],
                   postprocess_largest_component: bool = False,
                   num_processes: int = default_num_processes) -> dict:
    """Metrics of every reference case (file ending from dataset.json) against the prediction of the same name.
    Returns {'prediction_folder', 'reference_folder', 'postprocessing', 'labels_or_regions', 'metric_per_case':
    [case_metrics + 'case_id'], 'per_class': {key: {metric: summary, 'status_counts': {...}}}, 'foreground_mean':
    {metric: mean of the class means, None if a class has none}}, all JSON-serialisable. A post-processed result says
    so in 'postprocessing'; keep it apart from the plain one. Raises MetricsInputError for missing predictions."""
    if isinstance(dataset_json, str):
        if not isfile(dataset_json):
            raise MetricsInputError(f'dataset_json {dataset_json} does not exist. Pass the dataset.json of the '
                                    f'evaluated dataset (its labels and file_ending are used) or its content.')
        dataset_json = load_json(dataset_json)
    label_manager = LabelManager(dataset_json['labels'], dataset_json.get('regions_class_order'))
    labels_or_regions = label_manager.foreground_regions if label_manager.has_regions \
        else label_manager.foreground_labels
    file_ending = dataset_json['file_ending']
    case_ids, prediction_files, reference_files = _paired_files(prediction_folder, reference_folder, file_ending)
    reader = determine_reader_writer_from_dataset_json(dataset_json, reference_files[0], verbose=False)()
    arguments = list(zip(prediction_files, reference_files, repeat(labels_or_regions), repeat(reader),
                         repeat(postprocess_largest_component), repeat(label_manager.ignore_label)))
    num_processes = max(1, min(num_processes, len(arguments)))
    if num_processes == 1:
        per_case = [case_metrics(*a) for a in arguments]
    else:
        # spawned workers as in nnU-Net's evaluation
        with multiprocessing.get_context('spawn').Pool(num_processes, initializer=_use_one_torch_thread) as pool:
            per_case = pool.starmap(case_metrics, arguments)

    keys = [label_or_region_to_key(r) for r in labels_or_regions]
    per_class = {key: {**{metric: summarize([case['metrics'][key][metric] for case in per_case])
                          for metric in METRIC_NAMES},
                       'status_counts': {status: sum(case['metrics'][key]['status'] == status for case in per_case)
                                         for status in STATUSES}}
                 for key in keys}
    class_means = {metric: [per_class[key][metric]['mean'] for key in keys] for metric in METRIC_NAMES}
    return {'prediction_folder': prediction_folder, 'reference_folder': reference_folder,
            'postprocessing': LARGEST_COMPONENT if postprocess_largest_component else NO_POSTPROCESSING,
            'labels_or_regions': keys,
            'metric_per_case': [{'case_id': case_id, **case} for case_id, case in zip(case_ids, per_case)],
            'per_class': per_class,
            'foreground_mean': {metric: None if None in means else float(np.mean(means))
                                for metric, means in class_means.items()}}


def summarize(values: Sequence[Optional[float]]) -> dict:
    """{'mean', 'std', 'n', 'n_none'} over the values that are not None (mean and std None if there are none)."""
    present = [v for v in values if v is not None]
    return {'mean': float(np.mean(present)) if present else None,
            'std': float(np.std(present, ddof=STD_DDOF)) if present else None,
            'n': len(present), 'n_none': len(values) - len(present)}


def _use_one_torch_thread() -> None:
    """Per worker: the distance computations are small, and torch's threads in several workers compete for the
    cores (one thread was 3x faster per case than two on 2 busy cores)."""
    torch.set_num_threads(1)


def _paired_files(prediction_folder: str, reference_folder: str,
                  file_ending: str) -> Tuple[List[str], List[str], List[str]]:
    """(case ids, prediction files, reference files) for every reference file."""
    for option, folder in (('prediction_folder', prediction_folder), ('reference_folder', reference_folder)):
        if not isdir(folder):
            raise MetricsInputError(f'{option} {folder} is not a folder.')
    references = subfiles(reference_folder, suffix=file_ending, join=False)
    if not references:
        raise MetricsInputError(f'reference_folder {reference_folder} holds no {file_ending} files (file_ending '
                                f'from dataset.json). Point it at the labels of the evaluated cases, e.g. labelsTs.')
    missing = [f for f in references if not isfile(join(prediction_folder, f))]
    if missing:
        raise MetricsInputError(f'{len(missing)} of the {len(references)} reference case(s) in {reference_folder} '
                                f'have no prediction in {prediction_folder}: {", ".join(missing[:10])}'
                                f'{" ..." if len(missing) > 10 else ""}. Predict all of them (nnUNetv2_predict), '
                                f'or evaluate against a reference folder holding only the predicted cases.')
    case_ids = [f[:-len(file_ending)] for f in references]
    return case_ids, [join(prediction_folder, f) for f in references], [join(reference_folder, f) for f in references]
