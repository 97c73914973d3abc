"""nnUNetv2_dtc_rank_unlabeled: ranks unlabelled cases by the dual-task disagreement of a DTC model (disagreement.py),
most uncertain first, so that the next case to annotate is the one the model is least sure about.

Each case is preprocessed with the model's plans (nnU-Net's preprocessor) and predicted with nnU-Net's own predictor
(sliding window, Gaussian weighting, mirroring when --tta), with the head's auxiliary channels kept: the predictor
reads its label manager only for the number of output channels, so a stand-in adds the auxiliary ones. Scores and
volumes are computed on the preprocessed grid (the configuration's spacing). `nnUNetv2_predict` is unaffected.
"""
import argparse
import csv
import io
import os
from typing import List, Optional

import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join
from nnunetv2.configuration import default_num_processes
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.utilities.file_path_utilities import get_output_folder
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
from tqdm import tqdm

from nnunetv2_dtc.annotation.disagreement import disagreement_scores, disagreement_views
from nnunetv2_dtc.annotation.gallery import largest_disagreement_slice, save_gallery
from nnunetv2_dtc.benchmark.overlays import foreground_classes
from nnunetv2_dtc.level_set_head import get_level_set_head
from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError
from nnunetv2_dtc.unlabeled_handling.folders import raw_unlabeled_images_folder
from nnunetv2_dtc.unlabeled_handling.input_checks import check_images_readable, find_unlabeled_cases
from nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled import load_planned_dataset
from nnunetv2_dtc.unlabeled_handling.workers import worker_map
from nnunetv2_dtc.utilities.cli import exit_with_error
from nnunetv2_dtc.utilities.files import write_text_atomic
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER

COMMAND = 'nnUNetv2_dtc_rank_unlabeled'
CSV_NAME = 'annotation_priority.csv'
FIGURE_NAME = 'annotation_priority.png'
DEFAULT_TRAINER = 'nnUNetTrainerDTC'
DEFAULT_CHECKPOINT = 'checkpoint_final.pth'
NUM_CASES_SHOWN = 4  # rows of the PNG: the most uncertain cases
TILE_STEP_SIZE = 0.5  # nnUNetv2_predict's default


class RankingError(ValueError):
    """Input the ranking cannot use; the message names it and the fix."""


class _WithAuxiliaryChannels:
    """The predictor's label manager, answering num_segmentation_heads with the auxiliary channels added."""

    def __init__(self, label_manager, num_auxiliary_channels: int):
        self._label_manager = label_manager
        self.num_segmentation_heads = label_manager.num_segmentation_heads + num_auxiliary_channels

    def __getattr__(self, name):
        return getattr(self._label_manager, name)


def dtc_predictor(model_folder: str, fold: str, checkpoint: str, device: str, tta: bool):
    """nnU-Net's predictor for the model, its auxiliary task and head, or a RankingError for a non-DTC model."""
    if not isdir(model_folder):
        raise RankingError(f'Model folder {model_folder} not found: train it first (nnUNetv2_train ... -tr TRAINER), '
                           f'or pass the -tr / -p / -c it was trained with.')
    predictor = nnUNetPredictor(tile_step_size=TILE_STEP_SIZE, use_gaussian=True, use_mirroring=tta,
                                device=torch.device(device), verbose=False, verbose_preprocessing=False,
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model_folder, (fold if fold == 'all' else int(fold),), checkpoint)
    trainer_class = recursive_find_trainer_class_by_name(predictor.trainer_name)
    try:
        head = get_level_set_head(predictor.network)
    except TypeError:
        head = None
    if head is None or not hasattr(trainer_class, 'build_auxiliary_task'):
        raise RankingError(f'{model_folder} is a {predictor.trainer_name} model without a DTC auxiliary head (a '
                           f'vanilla nnU-Net model or a vanilla export): {COMMAND} needs a DTC model folder '
                           f'(trained with nnUNetTrainerDTC or a subclass).')
    head.emit_level_set = head.emit_in_eval = True
    predictor.label_manager = _WithAuxiliaryChannels(predictor.label_manager, head.num_level_set_channels)
    return predictor, trainer_class.build_auxiliary_task(), head


def voxel_volume_mm3(configuration_spacing, original_spacing) -> float:
    """Volume of a preprocessed voxel: the configuration's spacing, and for a 2D configuration (in-plane spacing
    only, as nnU-Net resamples 2D data) the case's own spacing (in the plans' axis order) along the first axis."""
    spacing = list(configuration_spacing)
    if len(spacing) < len(original_spacing):
        spacing = [original_spacing[0], *spacing]
    return float(np.prod(spacing))


def rank_unlabeled(dataset: str, configuration: str, fold: str, output_folder: str,
                   trainer: str = DEFAULT_TRAINER, plans_identifier: str = DEFAULT_PLANS_IDENTIFIER,
                   input_folder: Optional[str] = None, checkpoint: str = DEFAULT_CHECKPOINT, device: str = 'cpu',
                   tta: bool = False, overwrite: bool = False, num_processes: int = default_num_processes) \
        -> List[dict]:
    """Scores every case of input_folder (default: the dataset's imagesUnlabeled), writes CSV_NAME and FIGURE_NAME
    into output_folder and returns the rows, most uncertain first. Raises RankingError or UnlabeledDataError before
    anything is written."""
    csv_file, figure_file = join(output_folder, CSV_NAME), join(output_folder, FIGURE_NAME)
    existing = [f for f in (csv_file, figure_file) if isfile(f)]
    if existing and not overwrite:
        raise RankingError(f'{existing[0]} exists: pass --overwrite to replace it, or choose another -o.')
    planned = load_planned_dataset(dataset, plans_identifier, configuration)
    images_folder = input_folder or raw_unlabeled_images_folder(planned.name)
    cases = find_unlabeled_cases(images_folder, planned.dataset_json, planned.labeled_cases.keys(), num_processes)
    with worker_map(min(num_processes, len(cases))) as parallel_map:
        check_images_readable(parallel_map, images_folder, cases,
                              next(iter(planned.labeled_cases.values()))['images'][0],
                              planned.plans_manager.image_reader_writer_class)
    model_folder = get_output_folder(planned.name, trainer, plans_identifier, configuration)
    predictor, task, head = dtc_predictor(model_folder, fold, checkpoint, device, tta)
    class_names = [name for name, _ in foreground_classes(predictor.dataset_json)]
    num_segmentation = head.num_segmentation_channels
    has_regions = predictor.label_manager.has_regions
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)

    rows, slices = [], []
    for case_id, files in tqdm(sorted(cases.items()), desc='Ranking unlabelled cases'):
        data, _, properties = preprocessor.run_case(files, None, predictor.plans_manager,
                                                    predictor.configuration_manager, predictor.dataset_json)
        logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).float()
        task_view, segmentation_view = disagreement_views(task, logits[num_segmentation:], logits[:num_segmentation],
                                                          has_regions)
        score, per_class = disagreement_scores(task_view, segmentation_view)
        foreground = (segmentation_view > 0.5).any(0) if has_regions else logits[:num_segmentation].argmax(0) > 0
        rows.append({'case': case_id, 'score': score, **{f'score_{n}': s for n, s in zip(class_names, per_class)},
                     'predicted_volume_mm3': float(foreground.sum()) * voxel_volume_mm3(
                         predictor.configuration_manager.spacing,
                         [properties['spacing'][i] for i in predictor.plans_manager.transpose_forward])})
        slices.append(largest_disagreement_slice(case_id, score, data[0], task_view.numpy(),
                                                 segmentation_view.numpy()))
    order = sorted(range(len(rows)), key=lambda i: -rows[i]['score'])
    rows = [rows[i] for i in order]
    os.makedirs(output_folder, exist_ok=True)
    write_text_atomic(csv_file, _csv_text(rows))
    save_gallery([slices[i] for i in order[:NUM_CASES_SHOWN]], figure_file, type(task).__name__)
    return rows


def _csv_text(rows: List[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f'{v:.6g}' if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def rank_unlabeled_entry() -> None:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description='Ranks unlabelled cases by the dual-task disagreement of a DTC model (its segmentation against '
                    'its auxiliary task, e.g. the level set), most uncertain first: which case to annotate next. '
                    f'Writes {CSV_NAME} (case, score, per-class scores, predicted foreground volume) and '
                    f'{FIGURE_NAME} (the top cases at their slice of largest disagreement) into -o. Needs '
                    'nnUNet_extTrainer as for nnUNetv2_predict.')
    parser.add_argument('-d', required=True, metavar='ID', help='Dataset ID or name.')
    parser.add_argument('-c', required=True, metavar='CONFIG', help='Configuration the model was trained with.')
    parser.add_argument('-f', required=True, metavar='FOLD', help='Fold of the model (0-4 or all).')
    parser.add_argument('-tr', default=DEFAULT_TRAINER, metavar='TRAINER',
                        help=f'A DTC trainer (or subclass). Default: {DEFAULT_TRAINER}.')
    parser.add_argument('-p', default=DEFAULT_PLANS_IDENTIFIER, metavar='PLANS',
                        help=f'Plans identifier. Default: {DEFAULT_PLANS_IDENTIFIER}.')
    parser.add_argument('-i', default=None, metavar='FOLDER',
                        help='Images to rank, named like imagesTr (CASE_0000.nii.gz). Default: the dataset\'s '
                             'imagesUnlabeled.')
    parser.add_argument('-o', required=True, metavar='OUT', help='Output folder.')
    parser.add_argument('-chk', default=DEFAULT_CHECKPOINT, metavar='CHECKPOINT',
                        help=f'Default: {DEFAULT_CHECKPOINT}.')
    parser.add_argument('-device', choices=('cpu', 'cuda'), default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='Default: cuda when available, else cpu.')
    parser.add_argument('--tta', action='store_true', help='Mirroring test-time augmentation (off by default).')
    parser.add_argument('--overwrite', action='store_true', help=f'Replace an existing {CSV_NAME} / {FIGURE_NAME}.')
    parser.add_argument('-np', type=int, default=default_num_processes, metavar='N',
                        help=f'Processes for the image checks. Default: {default_num_processes}.')
    args = parser.parse_args()
    try:
        rows = rank_unlabeled(args.d, args.c, args.f, args.o, args.tr, args.p, args.i, args.chk, args.device,
                              args.tta, args.overwrite, args.np)
    except (RankingError, UnlabeledDataError) as e:
        exit_with_error(COMMAND, e)
    print(f'{len(rows)} case(s) ranked; most uncertain first: '
          + ', '.join(f'{row["case"]} ({row["score"]:.4f})' for row in rows[:NUM_CASES_SHOWN]))
    print(f'Written: {join(args.o, CSV_NAME)}, {join(args.o, FIGURE_NAME)}')
