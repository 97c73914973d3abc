"""Preprocesses the unlabelled images of a dataset with its own nnU-Net plans, configuration and preprocessor, into
nnU-Net's storage format (see folders.py for the folders). Resumable: finished cases are kept, unfinished ones
redone."""
import argparse
import shutil
from dataclasses import dataclass
from itertools import repeat
from typing import Optional, Union

from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, load_json, maybe_mkdir_p
from nnunetv2.configuration import default_num_processes
from nnunetv2.utilities.dataset_name_id_conversion import convert_dataset_name_to_id
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets
from tqdm import tqdm

from nnunetv2_dtc.trainer_dir import ext_trainer_is_set_up, missing_ext_trainer_message
from nnunetv2_dtc.unlabeled_handling.errors import PREPROCESS_COMMAND, UnlabeledDataError
from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME, configuration_manager_from, \
    dataset_name_from, load_plans_manager, manifest_file, preprocessed_dataset_json_file, raw_dataset_folder, \
    raw_unlabeled_images_folder, temporary_folder, unlabeled_folder_for
from nnunetv2_dtc.unlabeled_handling.input_checks import check_images_readable, find_unlabeled_cases
from nnunetv2_dtc.unlabeled_handling.manifest import CASES_KEY, FINGERPRINT_KEY, fingerprint, preprocessing_inputs, \
    read_manifest, write_manifest
from nnunetv2_dtc.unlabeled_handling.storage import empty_class_locations, is_case_complete, preprocess_case, \
    remove_case, stored_case_ids
from nnunetv2_dtc.unlabeled_handling.workers import worker_map
from nnunetv2_dtc.utilities.cli import exit_with_error
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER


@dataclass
class PlannedDataset:
    name: str
    plans_manager: PlansManager
    configuration_manager: ConfigurationManager
    dataset_json: dict
    labeled_cases: dict  # nnU-Net's {case id: {'images': [...], 'label': ...}}


def preprocess_unlabeled(dataset_name_or_id: Union[int, str], configuration: str,
                         plans_identifier: str = DEFAULT_PLANS_IDENTIFIER, num_processes: int = default_num_processes,
                         input_folder: Optional[str] = None, overwrite: bool = False, verbose: bool = False) -> str:
    """Preprocesses the images in input_folder (default: the dataset's imagesUnlabeled) and returns the output
    folder. Cases already finished with the same plans are skipped; with overwrite everything is redone. Raises
    UnlabeledDataError, before writing anything, for missing plans or folders and unusable images."""
    dataset = load_planned_dataset(dataset_name_or_id, plans_identifier, configuration)
    images_folder = input_folder or raw_unlabeled_images_folder(dataset.name)
    cases = find_unlabeled_cases(images_folder, dataset.dataset_json, dataset.labeled_cases.keys(), num_processes)

    output_folder = unlabeled_folder_for(dataset.name, dataset.configuration_manager.data_identifier)
    inputs = preprocessing_inputs(dataset.plans_manager, configuration, dataset.dataset_json)
    manifest = read_manifest(manifest_file(output_folder))
    redo_all = overwrite or manifest is None or manifest[FINGERPRINT_KEY] != fingerprint(inputs)
    finished = [] if redo_all else \
        [c for c in manifest[CASES_KEY] if c in cases and is_case_complete(output_folder, c)]
    pending = {c: files for c, files in cases.items() if c not in finished}
    print(f'{dataset.name} {configuration}: {len(cases)} unlabelled case(s) in {images_folder}, {len(finished)} '
          f'already preprocessed, {len(pending)} to do. Output: {output_folder}')

    def record(case_ids):
        write_manifest(manifest_file(output_folder), plans_identifier, configuration,
                       dataset.configuration_manager.data_identifier, inputs, case_ids)

    if not pending:
        shutil.rmtree(temporary_folder(output_folder), ignore_errors=True)
        _remove_stale_cases(output_folder, cases)
        if manifest[CASES_KEY] != sorted(finished):
            record(finished)
        return output_folder

    with worker_map(min(num_processes, len(pending))) as parallel_map:
        check_images_readable(parallel_map, images_folder, pending,
                              next(iter(dataset.labeled_cases.values()))['images'][0],
                              dataset.plans_manager.image_reader_writer_class)
        if redo_all:
            shutil.rmtree(output_folder, ignore_errors=True)
        shutil.rmtree(temporary_folder(output_folder), ignore_errors=True)
        maybe_mkdir_p(output_folder)
        _remove_stale_cases(output_folder, cases)
        record(finished)

        done = parallel_map(preprocess_case, pending, pending.values(), repeat(output_folder),
                            repeat(temporary_folder(output_folder)),
                            repeat(dataset.configuration_manager.preprocessor_class(verbose=verbose)),
                            repeat(dataset.plans_manager), repeat(dataset.configuration_manager),
                            repeat(dataset.dataset_json),
                            repeat(empty_class_locations(dataset.plans_manager, dataset.dataset_json)))
        for case_id in tqdm(done, total=len(pending), desc='Preprocessing unlabelled cases'):
            finished.append(case_id)
            record(finished)
    shutil.rmtree(temporary_folder(output_folder), ignore_errors=True)
    return output_folder


def load_planned_dataset(dataset_name_or_id: Union[int, str], plans_identifier: str,
                          configuration: str) -> PlannedDataset:
    """The dataset's plans, configuration, preprocessed dataset.json and labelled cases, or a clear refusal."""
    name = dataset_name_from(dataset_name_or_id)
    plans_manager = load_plans_manager(name, plans_identifier)
    configuration_manager = configuration_manager_from(plans_manager, configuration)
    if configuration_manager.preprocessor_class is None:
        raise UnlabeledDataError(f'Preprocessor class {configuration_manager.preprocessor_name!r} (from the plans) '
                                 f'not found in nnunetv2.preprocessing.')
    dataset_json_file = preprocessed_dataset_json_file(name)
    if not isfile(dataset_json_file):
        raise UnlabeledDataError(f'{dataset_json_file} not found. Run `nnUNetv2_plan_and_preprocess -d '
                                 f'{convert_dataset_name_to_id(name)}` first.')
    dataset_json = load_json(dataset_json_file)
    if not isdir(raw_dataset_folder(name)):
        raise UnlabeledDataError(f'The raw dataset folder {raw_dataset_folder(name)} does not exist; the unlabelled '
                                 f'images are checked against its labelled images.')
    labeled_cases = get_filenames_of_train_images_and_targets(raw_dataset_folder(name), dataset_json)
    return PlannedDataset(name, plans_manager, configuration_manager, dataset_json, labeled_cases)


def _remove_stale_cases(output_folder: str, cases: dict) -> None:
    """Removes preprocessed cases whose raw images are gone, so the folder mirrors the unlabelled images."""
    for case_id in stored_case_ids(output_folder):
        if case_id not in cases:
            remove_case(output_folder, case_id)


def preprocess_unlabeled_entry():
    parser = argparse.ArgumentParser(
        prog=PREPROCESS_COMMAND,
        description=f'Preprocesses the unlabelled images of a dataset for DTC training, with the dataset\'s own plans '
                    f'and preprocessor. Put them in $nnUNet_raw/DatasetXXX_Name/{UNLABELED_IMAGES_FOLDER_NAME}/, '
                    f'named like imagesTr (CASE_0000.nii.gz, one file per channel). Output: '
                    f'$nnUNet_preprocessed/DatasetXXX_Name/<data_identifier>_unlabeled/ and a manifest '
                    f'<data_identifier>_unlabeled.json beside it. Run nnUNetv2_plan_and_preprocess first.')
    parser.add_argument('-d', required=True, metavar='ID', help='Dataset ID or name, e.g. 990 or Dataset990_DTCDemo.')
    parser.add_argument('-c', nargs='+', required=True, metavar='CONFIG',
                        help='Configuration(s) to preprocess for, e.g. 3d_fullres 2d (any configuration in the plans).')
    parser.add_argument('-p', default=DEFAULT_PLANS_IDENTIFIER, metavar='PLANS',
                        help=f'Plans identifier. Default: {DEFAULT_PLANS_IDENTIFIER}.')
    parser.add_argument('-np', type=int, default=default_num_processes, metavar='N',
                        help=f'Number of worker processes; 1 runs in this process. Default: {default_num_processes} '
                             f'(env nnUNet_def_n_proc).')
    parser.add_argument('-i', default=None, metavar='FOLDER',
                        help=f'Folder with the unlabelled images instead of the dataset\'s '
                             f'{UNLABELED_IMAGES_FOLDER_NAME}.')
    parser.add_argument('--overwrite', action='store_true',
                        help='Redo all cases, even those already preprocessed with the same plans.')
    parser.add_argument('--verbose', action='store_true', help='Let the nnU-Net preprocessor print its details.')
    args = parser.parse_args()
    try:
        for configuration in args.c:
            preprocess_unlabeled(args.d, configuration, args.p, args.np, args.i, args.overwrite, args.verbose)
    except UnlabeledDataError as e:
        exit_with_error(PREPROCESS_COMMAND, e)
    if not ext_trainer_is_set_up():
        print(f'Next, before nnUNetv2_train -tr nnUNetTrainerDTC: {missing_ext_trainer_message()}')


if __name__ == '__main__':
    preprocess_unlabeled_entry()
