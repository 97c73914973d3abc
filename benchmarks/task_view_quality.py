"""How well does each of a DTC model's two views segment, on images whose labels you have (issue #14's diagnosis)?

The consistency term pulls the segmentation towards the auxiliary task's view (sigmoid(-k * level set) for DTC) and
back; on unlabelled images nothing else corrects either. If the task's view segments worse than the segmentation
itself, a stronger consistency can only pull the segmentation towards a worse answer. Over all foreground classes
and per class, this prints the Dice of each view against the reference, each view's volume against the reference's,
and the share of the reference's inner-boundary voxels (those with a neighbour outside the class, 6-connectivity in
3D) each view calls foreground: DTC's SDF target is 0 there, so a perfect level set's view is 0.5 on them. It also
prints the task's own output (the level set for DTC) per region of the reference: its median over the interior, the
inner boundary, the first layer outside and the voxels far outside, so a level set can be read against its SDF target.

    python benchmarks/task_view_quality.py -m MODEL_FOLDER -i IMAGES -l LABELS [-f all] [-n 20]

Images are preprocessed with the model's plans and predicted with nnU-Net's predictor (as nnUNetv2_dtc_rank_unlabeled
does); the labels are preprocessed with them, so everything is compared on the preprocessed grid. Use images the model
did not train on with labels, e.g. the unlabelled images of a dataset made by nnUNetv2_dtc_make_ssl_dataset with the
source's labels, or the test cases.
"""
import argparse
import os
from typing import Dict, List, Tuple

import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from model_on_images import add_model_and_images_arguments, load_model_on_images
from nnunetv2_dtc.annotation.disagreement import FOREGROUND_THRESHOLD, disagreement_views
from nnunetv2_dtc.benchmark.overlays import foreground_classes

METRICS = ('dice', 'volume_ratio', 'inner_boundary_called')
REGIONS = ('interior', 'inner_boundary', 'outside_1', 'far_outside')
# "far outside": beyond this many face-neighbour dilations of the class, where the SDF target is its largest values
FAR_OUTSIDE_VOXELS = 3
TASK_OUTPUT = 'task output'


def inner_boundary(mask: np.ndarray) -> np.ndarray:
    """Voxels of `mask` with a face neighbour outside it (the image border counts as inside, as in DTC's SDF)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure, border_value=1)


def view_metrics(view: np.ndarray, reference: np.ndarray) -> Dict[str, float]:
    """Dice, volume / reference volume and the share of the reference's inner boundary that `view` calls
    foreground; NaN where the reference is empty."""
    if not reference.any():
        return dict.fromkeys(METRICS, float('nan'))
    boundary = inner_boundary(reference)
    return {'dice': 2 * float((view & reference).sum()) / float(view.sum() + reference.sum()),
            'volume_ratio': float(view.sum()) / float(reference.sum()),
            'inner_boundary_called': float(view[boundary].mean())}


def region_masks(reference: np.ndarray) -> Dict[str, np.ndarray]:
    """The reference class's interior and inner boundary, the first layer outside it (face neighbours) and the
    voxels beyond FAR_OUTSIDE_VOXELS such layers."""
    structure = ndimage.generate_binary_structure(reference.ndim, 1)
    boundary = inner_boundary(reference)
    return {'interior': reference & ~boundary, 'inner_boundary': boundary,
            'outside_1': ndimage.binary_dilation(reference, structure) & ~reference,
            'far_outside': ~ndimage.binary_dilation(reference, structure, iterations=FAR_OUTSIDE_VOXELS)}


def region_medians(task_output: np.ndarray, reference: np.ndarray) -> Dict[str, float]:
    """Median of the task's output over each of region_masks(reference); NaN for an empty region."""
    return {region: float(np.median(task_output[mask])) if mask.any() else float('nan')
            for region, mask in region_masks(reference).items()}


def empty_metrics() -> Dict[str, Dict[str, List[float]]]:
    return {**{view: {metric: [] for metric in METRICS} for view in ('task view', 'segmentation')},
            TASK_OUTPUT: {region: [] for region in REGIONS}}


def case_metrics(predictor, preprocessor, task, num_segmentation: int, classes: List[Tuple[str, List[int]]],
                 image_files: List[str], label_file: str) -> Dict[str, Dict[str, List[float]]]:
    """{view: {metric: one value per foreground class}} of one case; `classes` as foreground_classes gives them."""
    data, reference, _ = preprocessor.run_case(image_files, label_file, predictor.plans_manager,
                                               predictor.configuration_manager, predictor.dataset_json)
    logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).float()
    task_view, _ = disagreement_views(task, logits[num_segmentation:], logits[:num_segmentation],
                                      predictor.label_manager.has_regions)
    segmentation = predictor.label_manager.convert_logits_to_segmentation(logits[:num_segmentation]).numpy()
    task_output = task.activation(logits[num_segmentation:]).numpy()
    result = empty_metrics()
    for channel, (_, labels) in enumerate(classes):
        reference_mask = np.isin(reference[0], labels)
        for view_name, view in (('task view', task_view[channel].numpy() > FOREGROUND_THRESHOLD),
                                ('segmentation', np.isin(segmentation, labels))):
            for metric, value in view_metrics(view, reference_mask).items():
                result[view_name][metric].append(value)
        for region, value in region_medians(task_output[channel], reference_mask).items():
            result[TASK_OUTPUT][region].append(value)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_model_and_images_arguments(parser)
    parser.add_argument('-l', required=True, help='Labels of the images (CASE.nii.gz).')
    args = parser.parse_args()

    model = load_model_on_images(args)
    predictor, task, head, file_ending, cases = model.predictor, model.task, model.head, model.file_ending, model.cases
    totals = empty_metrics()  # per metric: case-major, then class
    missing = [case for case in cases if not os.path.isfile(os.path.join(args.l, case + file_ending))]
    if missing:
        raise SystemExit(f'{len(missing)} label(s) missing in {args.l}, e.g. {missing[0]}{file_ending}: -l must hold '
                         f'the label of every image in {args.i}')
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    classes = foreground_classes(predictor.dataset_json)
    for case in tqdm(cases, desc='Scoring both views'):
        metrics = case_metrics(predictor, preprocessor, task, head.num_segmentation_channels, classes,
                               model.case_files(case),
                               os.path.join(args.l, case + file_ending))
        for view, values in metrics.items():
            for metric, per_class in values.items():
                totals[view][metric].extend(per_class)
    class_names = [name for name, _ in classes]
    print(f'{args.m}: {len(cases)} case(s), {type(task).__name__}; mean over cases (10th-90th percentile); '
          f'{TASK_OUTPUT}: its median per region of the reference')
    for scope, index in [('all classes', slice(None))] + [(name, slice(i, None, len(class_names)))
                                                          for i, name in enumerate(class_names)]:
        for view, values in totals.items():
            print(f'  {scope:>12} {view:>12}: ' + ', '.join(
                f'{metric} {np.nanmean(v[index]):.3f} ({np.nanpercentile(v[index], 10):.3f}-'
                f'{np.nanpercentile(v[index], 90):.3f})' for metric, v in values.items()))


if __name__ == '__main__':
    main()
