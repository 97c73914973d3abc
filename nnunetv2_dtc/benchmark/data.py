"""The benchmark's dataset: labelled training cases (imagesTr/labelsTr), unlabelled images (imagesUnlabeled) and
held-out test cases (imagesTs/labelsTs), checked before anything runs, and its nnU-Net preprocessing, made with
nnU-Net's own commands only when it is missing."""
from dataclasses import dataclass
from typing import List, Optional

from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json, subfiles
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
from nnunetv2.utilities.dataset_name_id_conversion import convert_dataset_name_to_id
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets, \
    get_identifiers_from_splitted_dataset_folder

from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME
from nnunetv2_dtc.utilities.cli import shown
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER, plans_file, required_folder, \
    resolve_dataset_name

TEST_IMAGES_FOLDER, TEST_LABELS_FOLDER = 'imagesTs', 'labelsTs'
# nnU-Net's preprocessor writes a case's .pkl after its data files: a case with its .pkl is complete
FINISHED_CASE_SUFFIX = '.pkl'
SSL_DATASET_HINT = ('nnUNetv2_dtc_make_ssl_dataset makes such a dataset from a fully labelled one (see '
                    'docs/benchmark.md).')


class BenchmarkDataError(ValueError):
    """A dataset the benchmark cannot run on; the message says what is missing and how to add it."""


@dataclass(frozen=True)
class BenchmarkDataset:
    dataset_id: int
    name: str
    raw_folder: str
    file_ending: str
    labeled_cases: List[str]
    test_cases: List[str]
    test_raw_folder: Optional[str] = None  # where imagesTs/labelsTs are, when not in raw_folder (derived datasets)

    @property
    def test_images(self) -> str:
        return join(self.test_raw_folder or self.raw_folder, TEST_IMAGES_FOLDER)

    @property
    def test_labels(self) -> str:
        return join(self.test_raw_folder or self.raw_folder, TEST_LABELS_FOLDER)

    def plans_file(self, plans_identifier: str) -> str:
        return plans_file(self.name, plans_identifier)


def find_benchmark_dataset(dataset: str, needs_unlabeled: bool) -> BenchmarkDataset:
    """The dataset's folders and cases, or BenchmarkDataError naming what is missing."""
    for variable in (nnUNet_raw, nnUNet_preprocessed):
        required_folder(variable, BenchmarkDataError)
    name = resolve_dataset_name(dataset, BenchmarkDataError)
    raw_folder = join(nnUNet_raw.get(), name)
    if not isfile(join(raw_folder, 'dataset.json')):
        raise BenchmarkDataError(f'{join(raw_folder, "dataset.json")} not found: the benchmark needs the raw dataset '
                                 f'(its test cases are in imagesTs/labelsTs). {SSL_DATASET_HINT}')
    dataset_json = load_json(join(raw_folder, 'dataset.json'))
    file_ending = dataset_json['file_ending']
    labeled = sorted(get_filenames_of_train_images_and_targets(raw_folder, dataset_json))
    if not labeled:
        raise BenchmarkDataError(f'{raw_folder}/imagesTr holds no labelled cases.')
    test_cases = _test_cases(raw_folder, file_ending)
    if needs_unlabeled:
        unlabeled_folder = join(raw_folder, UNLABELED_IMAGES_FOLDER_NAME)
        if not isdir(unlabeled_folder) or not subfiles(unlabeled_folder, suffix=file_ending):
            raise BenchmarkDataError(f'{unlabeled_folder} holds no {file_ending} images, but DTC, the pseudo-label '
                                     f'methods and the upper bound train on them. Add the unlabelled images there, or '
                                     f'keep only nnUNetTrainer and nnUNetTrainerDTC_LabeledOnly in --trainers. '
                                     f'{SSL_DATASET_HINT}')
    return BenchmarkDataset(convert_dataset_name_to_id(name), name, raw_folder, file_ending, labeled, test_cases)


def _test_cases(raw_folder: str, file_ending: str) -> List[str]:
    images, labels = join(raw_folder, TEST_IMAGES_FOLDER), join(raw_folder, TEST_LABELS_FOLDER)
    if not isdir(images) or not isdir(labels):
        raise BenchmarkDataError(f'{raw_folder} needs {TEST_IMAGES_FOLDER}/ and {TEST_LABELS_FOLDER}/ with the '
                                 f'held-out test cases (the only cases the benchmark scores). {SSL_DATASET_HINT}')
    image_cases = set(get_identifiers_from_splitted_dataset_folder(images, file_ending).tolist())
    label_cases = {f[:-len(file_ending)] for f in subfiles(labels, suffix=file_ending, join=False)}
    if not label_cases:
        raise BenchmarkDataError(f'{labels} holds no {file_ending} label files. {SSL_DATASET_HINT}')
    for missing, where, other in ((sorted(label_cases - image_cases), images, 'labels'),
                                  (sorted(image_cases - label_cases), labels, 'images')):
        if missing:
            raise BenchmarkDataError(f'{shown(missing, f"test case(s) with {other}")} have no counterpart in '
                                     f'{where}. Every test case needs its image(s) in '
                                     f'{TEST_IMAGES_FOLDER} (CASE_0000{file_ending}, ...) and its label in '
                                     f'{TEST_LABELS_FOLDER} (CASE{file_ending}).')
    return sorted(label_cases)


def missing_preprocessing(dataset: BenchmarkDataset, plans_identifier: str, configuration: str) -> Optional[str]:
    """Why the plans or the preprocessed labelled cases for this configuration are not there, or None when they
    are complete."""
    plans_file = dataset.plans_file(plans_identifier)
    if not isfile(plans_file):
        return f'no plans file {plans_file}'
    plans_manager = PlansManager(plans_file)
    if configuration not in plans_manager.available_configurations:
        return f'configuration {configuration!r} is not in {plans_file}'
    base = join(nnUNet_preprocessed.get(), dataset.name)
    data_folder = join(base, plans_manager.get_configuration(configuration).data_identifier)
    missing = [case for case in dataset.labeled_cases if not isfile(join(data_folder, case + FINISHED_CASE_SUFFIX))]
    if missing:
        return f'{len(missing)} of {len(dataset.labeled_cases)} labelled case(s) are missing in {data_folder}'
    if not isfile(join(base, 'dataset.json')):
        return f'no {join(base, "dataset.json")}'
    return None


def preprocessing_command(dataset: BenchmarkDataset, plans_identifier: str, configuration: str,
                          num_processes: int) -> List[str]:
    """nnU-Net's command that makes the missing plans or preprocessed data. Custom plans (-p) must exist: nnU-Net
    makes them with planner options the benchmark cannot guess."""
    if isfile(dataset.plans_file(plans_identifier)):
        return ['nnUNetv2_preprocess', '-d', str(dataset.dataset_id), '-plans_name', plans_identifier,
                '-c', configuration, '-np', str(num_processes)]
    if plans_identifier != DEFAULT_PLANS_IDENTIFIER:
        raise BenchmarkDataError(f'-p {plans_identifier}: {dataset.plans_file(plans_identifier)} not found. Make '
                                 f'these plans first (e.g. nnUNetv2_plan_experiment -d {dataset.dataset_id} -pl ... '
                                 f'-overwrite_plans_name {plans_identifier}), or leave -p out for '
                                 f'{DEFAULT_PLANS_IDENTIFIER}.')
    return ['nnUNetv2_plan_and_preprocess', '-d', str(dataset.dataset_id), '-c', configuration,
            '-np', str(num_processes), '-npfp', str(num_processes), '--verify_dataset_integrity']

