"""The benchmark's derived datasets: nnU-Net raw datasets it makes itself, trained with the source's very plans.

- Pseudo-labels (pseudo_label, dtc_pseudo_label): the labelled cases plus the unlabelled images, labelled with a
  teacher run's predictions; one dataset per method and seed, since each seed has its own teacher.
- True labels (the upper bound): the labelled plus the unlabelled cases with their true labels, taken from the fully
  labelled dataset that nnUNetv2_dtc_make_ssl_dataset split (its ssl_split.json); one dataset for all seeds.

Images and true labels are hard links to the source's files (symbolic links or copies where that fails); pseudo-labels
are copies of the predictions. A derived dataset is named `Dataset<ID>_<source name>_dtcbench_<method>[_s<seed>]`,
so that it is obviously the benchmark's, and gets the IDs asked for (--derived_dataset_id and the next ones) or the
first free ones after the source's; a rerun finds it by name. It is preprocessed with the source's plans file,
unchanged but for the dataset name (nnUNetv2_preprocess with that plans identifier, no new planning), so every method
sees the same preprocessing.
"""
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json, save_json, subfiles
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.data import BenchmarkDataError, BenchmarkDataset, missing_preprocessing
from nnunetv2_dtc.benchmark.settings import METHODS, PSEUDO_LABELS, SOURCE_DATA, BenchmarkSettings
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import SPLIT_RECORD_FILE_NAME
from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME
from nnunetv2_dtc.utilities.cli import shown
from nnunetv2_dtc.utilities.files import json_sha256, link_or_copy, read_json_or_none, staged_folder, \
    write_json_atomic
from nnunetv2_dtc.utilities.nnunet_paths import MAX_DATASET_ID, datasets_with_id

DERIVED_INFIX = '_dtcbench_'
DERIVED_RECORD_FILE = 'dtc_benchmark_derived.json'  # in the raw and the preprocessed folder of a derived dataset
PLANS_JSON_INDENT = 4  # nnU-Net's save_json

TrainingDatasets = Dict[Tuple[str, int], Tuple[int, str]]  # (method, seed) -> (dataset id, name)


def derived_name_suffix(source_name: str, method: str, seed: Optional[int]) -> str:
    """What follows 'DatasetNNN_' in a derived dataset's name."""
    return f'{source_name.split("_", 1)[1]}{DERIVED_INFIX}{method}' + ('' if seed is None else f'_s{seed}')


def _existing(suffix: str) -> Optional[Tuple[int, str]]:
    """(id, name) of a dataset in nnUNet_raw or nnUNet_preprocessed named Dataset<ID>_<suffix>, if any."""
    pattern = re.compile(r'Dataset(\d{3})_' + re.escape(suffix))
    for root in (nnUNet_raw.get(), nnUNet_preprocessed.get()):
        for name in sorted(os.listdir(root)) if root and os.path.isdir(root) else []:
            match = pattern.fullmatch(name)
            if match:
                return int(match.group(1)), name
    return None


def _data_seed(method: str, seed: int) -> Optional[int]:
    """The seed a derived dataset depends on: its teacher's for pseudo-labels, none for true labels."""
    return seed if METHODS[method].training_data == PSEUDO_LABELS else None


def plan_training_datasets(settings: BenchmarkSettings, dataset: BenchmarkDataset) -> TrainingDatasets:
    """The (id, name) every run trains on: the benchmark's dataset, or a derived one found by name or given its ID
    now (nothing is written). Refuses a requested ID that another dataset uses."""
    planned: TrainingDatasets = {}
    allocated: Dict[str, Tuple[int, str]] = {}
    requested = settings.derived_dataset_id
    for method in settings.methods:
        for seed in settings.seeds:
            if METHODS[method].training_data == SOURCE_DATA:
                planned[(method, seed)] = (dataset.dataset_id, dataset.name)
                continue
            suffix = derived_name_suffix(dataset.name, method, _data_seed(method, seed))
            if suffix not in allocated:
                found = _existing(suffix)
                if found is None:
                    taken = {i for i, _ in allocated.values()}
                    if requested is not None:
                        found = (_requested_id(requested, taken, suffix), '')
                        requested = found[0] + 1
                    else:
                        found = (_first_free_id(dataset.dataset_id + 1, taken), '')
                    found = (found[0], f'Dataset{found[0]:03d}_{suffix}')
                allocated[suffix] = found
            planned[(method, seed)] = allocated[suffix]
    return planned


def _requested_id(dataset_id: int, taken: set, suffix: str) -> int:
    users = datasets_with_id(dataset_id) if dataset_id <= MAX_DATASET_ID else []
    if dataset_id > MAX_DATASET_ID or users or dataset_id in taken:
        why = f'already used by {", ".join(users)}' if users else 'not free'
        raise BenchmarkDataError(f'--derived_dataset_id: the derived dataset Dataset{dataset_id:03d}_{suffix} would '
                                 f'take ID {dataset_id}, which is {why}. Nothing was written. Choose a free ID (the '
                                 f'derived datasets take it and the next ones), or leave the option out for the first '
                                 f'free IDs.')
    return dataset_id


def _first_free_id(start: int, taken: set) -> int:
    for dataset_id in range(start, MAX_DATASET_ID + 1):
        if dataset_id not in taken and not datasets_with_id(dataset_id):
            return dataset_id
    raise BenchmarkDataError(f'No free dataset ID from {start} to {MAX_DATASET_ID} for the benchmark\'s derived '
                             f'datasets: pass --derived_dataset_id with a free ID.')


def upper_bound_labels(dataset: BenchmarkDataset, unlabeled_cases: Sequence[str]) -> Dict[str, str]:
    """{unlabelled case: its true label file} from the source dataset recorded in ssl_split.json; BenchmarkDataError
    naming the split file and what is missing, before anything trains."""
    split_file = join(dataset.raw_folder, SPLIT_RECORD_FILE_NAME)
    hint = ('--upper_bound needs a dataset made by nnUNetv2_dtc_make_ssl_dataset whose fully labelled source is still '
            'in place; leave --upper_bound out otherwise.')
    record = read_json_or_none(split_file)
    if record is None or not record.get('source_folder'):
        raise BenchmarkDataError(f'{split_file} {"does not exist" if record is None else "names no source_folder"}, '
                                 f'so the true labels of the unlabelled images are unknown. {hint}')
    labels_folder = join(record['source_folder'], 'labelsTr')
    labels = {case: join(labels_folder, case + dataset.file_ending) for case in unlabeled_cases}
    missing = [case for case, file in labels.items() if not isfile(file)]
    if missing:
        raise BenchmarkDataError(f'{split_file} names the source {record["source_folder"]}, but its labelsTr lacks '
                                 f'the labels of {shown(missing)}. {hint}')
    return labels


def _image_files(folder: str, case: str, file_ending: str) -> List[str]:
    pattern = re.compile(re.escape(case) + r'_\d{4}' + re.escape(file_ending))
    return [join(folder, f) for f in subfiles(folder, suffix=file_ending, join=False) if pattern.fullmatch(f)]


def prepare_derived_dataset(method: str, dataset_id: int, name: str, dataset: BenchmarkDataset,
                            unlabeled_cases: List[str], labels: Dict[str, str], labels_source, settings:
                            BenchmarkSettings, configuration: str, steps: BenchmarkSteps) -> BenchmarkDataset:
    """Writes (or reuses) the raw dataset `name`: the benchmark's labelled cases plus the unlabelled ones with
    `labels` ({case: label file}: pseudo-labels, copied, or true labels, linked), and its preprocessing with the
    source's plans. labels_source says where the labels come from (a prediction record, or the split file); when it
    changes, the dataset is made anew. Returns it as a BenchmarkDataset whose test cases are the source's."""
    kind = METHODS[method].training_data
    steps.start(f'dataset {name}: {len(dataset.labeled_cases)} labelled + {len(unlabeled_cases)} '
                f'{"pseudo-labelled" if kind == PSEUDO_LABELS else "truly labelled"} case(s), the source\'s plans')
    content = {'kind': kind, 'method': method, 'source_dataset': dataset.name, 'labeled_cases': dataset.labeled_cases,
               'unlabeled_cases': unlabeled_cases, 'labels_source': labels_source}
    raw_folder = join(nnUNet_raw.get(), name)
    if (read_json_or_none(join(raw_folder, DERIVED_RECORD_FILE)) or {}).get('content') == content:
        steps.note(f'reused: {raw_folder}')
    else:
        _write_raw_dataset(raw_folder, dataset, content, unlabeled_cases, labels, copy_labels=kind == PSEUDO_LABELS)
        steps.note(f'written: {raw_folder}')
    derived = BenchmarkDataset(dataset_id, name, raw_folder, dataset.file_ending,
                               sorted(dataset.labeled_cases + list(unlabeled_cases)), dataset.test_cases,
                               test_raw_folder=dataset.raw_folder)
    _preprocess_with_source_plans(derived, dataset, content, settings, configuration, steps)
    return derived


def _write_raw_dataset(raw_folder: str, dataset: BenchmarkDataset, content: dict, unlabeled_cases: List[str],
                       labels: Dict[str, str], copy_labels: bool) -> None:
    source_json = load_json(join(dataset.raw_folder, 'dataset.json'))
    labeled = get_filenames_of_train_images_and_targets(dataset.raw_folder, source_json)
    ending = dataset.file_ending
    unlabeled_folder = join(dataset.raw_folder, UNLABELED_IMAGES_FOLDER_NAME)
    cases = {case: (labeled[case]['images'], labeled[case]['label'], False) for case in dataset.labeled_cases}
    cases.update({case: (_image_files(unlabeled_folder, case, ending), labels[case], copy_labels)
                  for case in unlabeled_cases})
    with staged_folder(raw_folder) as staging:
        os.makedirs(join(staging, 'imagesTr'))
        os.makedirs(join(staging, 'labelsTr'))
        for case, (images, label, copy_label) in cases.items():
            for channel, image in enumerate(sorted(images)):
                link_or_copy(image, join(staging, 'imagesTr', f'{case}_{channel:04d}{ending}'))
            link_or_copy(label, join(staging, 'labelsTr', case + ending), link=not copy_label)
        dataset_json = {k: v for k, v in source_json.items() if k != 'dataset'}
        save_json({**dataset_json, 'numTraining': len(cases)}, join(staging, 'dataset.json'), sort_keys=False)
        write_json_atomic(join(staging, DERIVED_RECORD_FILE), {'content': content})


def derived_plans(source_plans: dict, name: str) -> dict:
    """The source's plans for the derived dataset `name`: only the dataset name differs."""
    return {**source_plans, 'dataset_name': name}


def _preprocess_with_source_plans(derived: BenchmarkDataset, dataset: BenchmarkDataset, content: dict,
                                  settings: BenchmarkSettings, configuration: str, steps: BenchmarkSteps) -> None:
    """Writes the source's plans (renamed), the derived dataset.json and the source's fingerprint into the derived
    dataset's preprocessed folder, then runs nnUNetv2_preprocess with them unless the preprocessed cases are there
    for the same content and plans."""
    folder = join(nnUNet_preprocessed.get(), derived.name)
    os.makedirs(folder, exist_ok=True)
    plans = derived_plans(load_json(dataset.plans_file(settings.plans_identifier)), derived.name)
    marker_file = join(folder, DERIVED_RECORD_FILE)
    marker = {'content': json_sha256(content), 'plans': json_sha256(plans)}
    if read_json_or_none(marker_file) == marker and \
            missing_preprocessing(derived, settings.plans_identifier, configuration) is None:
        steps.note(f'reused: the preprocessed cases in {folder}')
        return
    write_json_atomic(derived.plans_file(settings.plans_identifier), plans, indent=PLANS_JSON_INDENT)
    write_json_atomic(join(folder, 'dataset.json'), load_json(join(derived.raw_folder, 'dataset.json')))
    fingerprint = join(nnUNet_preprocessed.get(), dataset.name, 'dataset_fingerprint.json')
    if isfile(fingerprint):
        write_json_atomic(join(folder, 'dataset_fingerprint.json'), load_json(fingerprint))
    steps.run(f'preprocess {derived.name}', ['nnUNetv2_preprocess', '-d', str(derived.dataset_id), '-plans_name',
                                              settings.plans_identifier, '-c', configuration,
                                              '-np', str(settings.num_processes)])
    missing = missing_preprocessing(derived, settings.plans_identifier, configuration)
    if missing is not None:
        raise BenchmarkDataError(f'After nnUNetv2_preprocess of {derived.name}, {missing}. See the log in '
                                 f'{steps.log_folder}.')
    write_json_atomic(marker_file, marker)
