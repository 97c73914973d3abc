"""The benchmark's derived datasets: nnU-Net raw datasets it makes itself, trained with the source's very plans.

- Pseudo-labels (pseudo_label, dtc_pseudo_label): the labelled cases plus the unlabelled images, labelled with a
  teacher run's predictions; one dataset per method and seed, since each seed has its own teacher.
- True labels (the upper bound): the labelled plus the unlabelled cases with their true labels, taken from the fully
  labelled dataset that nnUNetv2_dtc_make_ssl_dataset split (its ssl_split.json); one dataset for all seeds.

Images and true labels are hard links to the source's files (symbolic links or copies where that fails); pseudo-labels
are copies of the predictions. A derived dataset is named `Dataset<ID>_<source name>_dtcbench_<method>[_s<seed>]_<hash>`
(derived_name_suffix), so that it is obviously the benchmark's, and gets the IDs asked for (--derived_dataset_id and
the next ones) or the first free ones after the source's; a rerun finds it by name. It is preprocessed with the
source's plans file, unchanged but for the dataset name (nnUNetv2_preprocess with that plans identifier, no new
planning), so every method sees the same preprocessing.
"""
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from batchgenerators.utilities.file_and_folder_operations import isfile, join, load_json, save_json, subfiles
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.utils import create_paths_fn

from nnunetv2_dtc.benchmark.commands import BenchmarkSteps
from nnunetv2_dtc.benchmark.data import BenchmarkDataError, BenchmarkDataset, missing_preprocessing
from nnunetv2_dtc.benchmark.plans import PLANS_JSON_INDENT
from nnunetv2_dtc.benchmark.settings import METHODS, PSEUDO_LABELS, SOURCE_DATA, BenchmarkSettings
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import SPLIT_RECORD_FILE_NAME, labeled_case_files
from nnunetv2_dtc.generated_trainers import schedule_trainer_name
from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME
from nnunetv2_dtc.utilities.cli import shown
from nnunetv2_dtc.utilities.files import json_sha256, link_or_copy, read_json_or_none, staged_folder, \
    write_json_atomic
from nnunetv2_dtc.utilities.nnunet_paths import MAX_DATASET_ID, datasets_with_id

DERIVED_INFIX = '_dtcbench_'
DERIVED_RECORD_FILE = 'dtc_benchmark_derived.json'  # in the raw and the preprocessed folder of a derived dataset
NAME_HASH_CHARS = 6  # tells apart the derived datasets of one machine, short enough to read

TrainingDatasets = Dict[Tuple[str, int], Tuple[int, str]]  # (method, seed) -> (dataset id, name)


def derived_name_suffix(source_name: str, method: str, seed: Optional[int], configuration: str,
                        teacher_trainer: Optional[str]) -> str:
    """What follows 'DatasetNNN_': `<source name>_dtcbench_<method>[_s<seed>]_<hash>`, the hash over what the data
    depends on: the source dataset (with its ID) and, for pseudo-labels, the configuration and the teacher's trainer
    (its schedule and seed). So benchmarks of other datasets, configurations or schedules never share one."""
    identity = {'source': source_name, 'method': method, 'configuration': configuration, 'teacher': teacher_trainer}
    readable = f'{source_name.split("_", 1)[1]}{DERIVED_INFIX}{method}' + ('' if seed is None else f'_s{seed}')
    return f'{readable}_{json_sha256(identity)[:NAME_HASH_CHARS]}'


def _existing(suffix: str) -> Optional[Tuple[int, str]]:
    """(id, name) of a dataset in nnUNet_raw or nnUNet_preprocessed named Dataset<ID>_<suffix>, if any."""
    pattern = re.compile(r'Dataset(\d{3})_' + re.escape(suffix))
    for root in (nnUNet_raw.get(), nnUNet_preprocessed.get()):
        for name in sorted(os.listdir(root)) if root and os.path.isdir(root) else []:
            match = pattern.fullmatch(name)
            if match:
                return int(match.group(1)), name
    return None


def _suffix(settings: BenchmarkSettings, dataset: BenchmarkDataset, method: str, seed: int,
            configuration: str) -> str:
    if METHODS[method].training_data != PSEUDO_LABELS:
        return derived_name_suffix(dataset.name, method, None, configuration, None)
    teacher = METHODS[METHODS[method].teacher].trainer
    teacher_trainer = schedule_trainer_name(teacher, settings.epochs, settings.iterations_per_epoch, seed)
    return derived_name_suffix(dataset.name, method, seed, configuration, teacher_trainer)


def plan_training_datasets(settings: BenchmarkSettings, dataset: BenchmarkDataset,
                           configuration: str) -> TrainingDatasets:
    """The (id, name) every run trains on (configuration: the one trained): the benchmark's dataset, or a derived one,
    found by name or given its ID now (nothing is written). New ones take --derived_dataset_id and the next IDs not
    taken by the found ones, or the first free IDs after the source's; a requested ID another dataset uses is
    refused."""
    suffixes = {(method, seed): _suffix(settings, dataset, method, seed, configuration)
                for method in settings.methods for seed in settings.seeds
                if METHODS[method].training_data != SOURCE_DATA}
    allocated = {suffix: _existing(suffix) for suffix in dict.fromkeys(suffixes.values())}
    taken = {found[0] for found in allocated.values() if found is not None}
    next_id = settings.derived_dataset_id if settings.derived_dataset_id is not None else dataset.dataset_id + 1
    for suffix, found in allocated.items():
        if found is None:
            next_id = _next_id(next_id, taken, suffix, requested=settings.derived_dataset_id is not None)
            allocated[suffix] = (next_id, f'Dataset{next_id:03d}_{suffix}')
            taken.add(next_id)
    return {(method, seed): allocated[suffixes[(method, seed)]] if (method, seed) in suffixes else
            (dataset.dataset_id, dataset.name) for method in settings.methods for seed in settings.seeds}


def _next_id(start: int, taken: set, suffix: str, requested: bool) -> int:
    """The first ID from start not taken by this benchmark's datasets; with requested, refused when another dataset
    uses it, else the first free one."""
    dataset_id = start
    while dataset_id in taken:
        dataset_id += 1
    if not requested:
        return _first_free_id(dataset_id, taken)
    users = datasets_with_id(dataset_id) if dataset_id <= MAX_DATASET_ID else []
    if dataset_id > MAX_DATASET_ID or users:
        why = f'already used by {", ".join(users)}' if users else f'above {MAX_DATASET_ID}'
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


def upper_bound_labels(dataset: BenchmarkDataset, unlabeled_cases: Sequence[str]) -> Tuple[Dict[str, str], dict]:
    """({unlabelled case: its true label file}, where they come from) from the source dataset that ssl_split.json
    records (its source_folder, else $nnUNet_raw/<source_dataset>); BenchmarkDataError naming the split file and what
    is missing, before anything trains."""
    split_file = join(dataset.raw_folder, SPLIT_RECORD_FILE_NAME)
    hint = ('--upper_bound needs a dataset made by nnUNetv2_dtc_make_ssl_dataset whose fully labelled source is still '
            'in place; leave --upper_bound out otherwise.')
    record = read_json_or_none(split_file)
    if record is None or not (record.get('source_folder') or record.get('source_dataset')):
        raise BenchmarkDataError(f'{split_file} {"does not exist" if record is None else "names no source dataset"}, '
                                 f'so the true labels of the unlabelled images are unknown. {hint}')
    source_folder = record.get('source_folder')
    if not source_folder or not os.path.isdir(source_folder):
        source_folder = join(nnUNet_raw.get(), record.get('source_dataset', ''))
    labels = {case: join(source_folder, 'labelsTr', case + dataset.file_ending) for case in unlabeled_cases}
    missing = [case for case, file in labels.items() if not isfile(file)]
    if missing:
        raise BenchmarkDataError(f'{split_file} names the source {source_folder}, but its labelsTr lacks the labels of '
                                 f'{shown(missing)}. {hint}')
    return labels, {'split_file': split_file, 'split_record': json_sha256(record), 'source_folder': source_folder}


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
    others = [user for user in datasets_with_id(dataset_id) if user != name]
    if others:
        raise BenchmarkDataError(f'The derived dataset {name} would share ID {dataset_id} with {", ".join(others)}, '
                                 f'made since the benchmark started. Nothing was written; run the benchmark again.')
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
    labeled = labeled_case_files(dataset.raw_folder, source_json)
    ending = dataset.file_ending
    unlabeled_folder = join(dataset.raw_folder, UNLABELED_IMAGES_FOLDER_NAME)
    unlabeled_files = subfiles(unlabeled_folder, suffix=ending, join=False, sort=True)  # listed once, not per case
    cases = {case: (labeled[case]['images'], labeled[case]['label'], False) for case in dataset.labeled_cases}
    cases.update({case: (create_paths_fn(unlabeled_folder, unlabeled_files, ending, case), labels[case], copy_labels)
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
    data_identifier = PlansManager(plans).get_configuration(configuration).data_identifier
    marker = {'content': json_sha256(content), 'plans': json_sha256(plans), 'data_identifier': data_identifier}
    if read_json_or_none(marker_file) == marker and \
            missing_preprocessing(derived, settings.plans_identifier, configuration) is None:
        steps.note(f'reused: the preprocessed cases in {folder}')
        return
    if os.path.isfile(marker_file):
        os.remove(marker_file)  # the cases are about to change: an interrupted run must not look finished
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
