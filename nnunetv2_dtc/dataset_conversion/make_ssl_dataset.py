"""Makes a semi-supervised benchmark dataset from a fully labelled nnU-Net raw dataset: M held-out test cases with
their labels (imagesTs/labelsTs), N labelled training cases (imagesTr/labelsTr) and the other training cases as
images only (imagesUnlabeled). `ssl_split.json` beside dataset.json records which case (and group) went where; how
the cases are drawn is split.py's.

The new dataset is written into a hidden temporary folder beside the target and renamed at the end, so an error or an
interrupt never leaves a partial dataset in nnUNet_raw.
"""
import argparse
import os
import re
from collections import Counter
from copy import deepcopy
from typing import Dict, List, Optional, Tuple, Union

from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json, save_json, subfiles
from nnunetv2.paths import nnUNet_raw
from nnunetv2.utilities.utils import create_paths_fn, get_filenames_of_train_images_and_targets, \
    get_identifiers_from_splitted_dataset_folder
from tqdm import tqdm

from nnunetv2_dtc.dataset_conversion.split import DEFAULT_SEED, GROUP_EXAMPLE, SslSplitError, case_groups, \
    draw_split, groups_of, num_labeled_from_fraction
from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME
from nnunetv2_dtc.utilities.cli import EXIT_STATUS_BAD_INPUT, shown
from nnunetv2_dtc.utilities.files import COPY, HARD_LINK, SYMBOLIC_LINK, link_or_copy, staged_folder
from nnunetv2_dtc.utilities.nnunet_paths import CHANNEL_FILE_PATTERN, MAX_DATASET_ID, datasets_with_id, \
    required_folder, resolve_dataset_name

COMMAND = 'nnUNetv2_dtc_make_ssl_dataset'
SPLIT_RECORD_FILE_NAME = 'ssl_split.json'
DEFAULT_NAME_SUFFIX = 'SSL'
DATASET_NAME_PATTERN = r'[A-Za-z0-9_.\-]+'

DATASET_SUBFOLDERS = ('imagesTr', 'labelsTr', UNLABELED_IMAGES_FOLDER_NAME, 'imagesTs', 'labelsTs')


def make_ssl_dataset(source: Union[int, str], new_id: int, num_test: int, num_labeled: Optional[int] = None,
                     labeled_fraction: Optional[float] = None, seed: int = DEFAULT_SEED, link: bool = False,
                     name: Optional[str] = None, group: Optional[str] = None) -> str:
    """Writes $nnUNet_raw/DatasetNEW_ID_<name> (default name: the source's name + 'SSL') from the fully labelled
    source dataset and returns its folder. Give exactly one of num_labeled and labeled_fraction; with group (a
    regular expression, see split.case_groups) they and num_test count groups of cases kept on one side. With link,
    files are hard links to the source's (symbolic links where hard links fail, e.g. across file systems, then
    copies). Raises SslSplitError, before writing anything, for unusable arguments or source data."""
    arguments = {'source': source, 'new_id': new_id, 'labeled': num_labeled, 'labeled_fraction': labeled_fraction,
                 'test': num_test, 'seed': seed, 'link': link, 'name': name, 'group': group}
    if (num_labeled is None) == (labeled_fraction is None):
        raise SslSplitError('Give exactly one of --labeled (a number of cases) and --labeled_fraction.')
    raw_root = _raw_root()
    source_name, source_folder = _find_source(source, raw_root)
    target_name = f'Dataset{_checked_new_id(new_id):03d}_{_checked_name(name, source_name)}'
    dataset_json, cases = find_labeled_cases(source_folder)
    groups = case_groups(list(cases), group)
    if labeled_fraction is not None:
        num_labeled = num_labeled_from_fraction(labeled_fraction, len(groups), num_test)
    split = draw_split(list(cases), num_labeled, num_test, seed, groups if group is not None else None)
    _refuse_used_id(new_id)

    file_ending = dataset_json['file_ending']
    new_dataset_json = {**deepcopy(dataset_json), 'numTraining': len(split.labeled)}
    # an explicit file list would point at the source's files; the new dataset uses the standard folder layout
    new_dataset_json.pop('dataset', None)
    record = {'source_dataset': source_name, 'source_folder': source_folder, 'seed': seed, 'arguments': arguments,
              'file_ending': file_ending, 'num_cases': len(cases), 'num_labeled': len(split.labeled),
              'num_unlabeled': len(split.unlabeled), 'num_test': len(split.test), 'labeled': split.labeled,
              'unlabeled': split.unlabeled, 'test': split.test, 'group_pattern': group}
    if group is not None:
        record['groups'] = groups
        record.update({f'{side}_groups': groups_of(getattr(split, side), groups)
                       for side in ('labeled', 'unlabeled', 'test')})
    transfers = [(source_file, join(folder, file_name))
                 for group, images_folder, labels_folder in ((split.labeled, 'imagesTr', 'labelsTr'),
                                                             (split.unlabeled, UNLABELED_IMAGES_FOLDER_NAME, None),
                                                             (split.test, 'imagesTs', 'labelsTs'))
                 for case_id in group
                 for source_file, folder, file_name in _case_files(case_id, cases[case_id], file_ending,
                                                                   images_folder, labels_folder)]
    target_folder = join(raw_root, target_name)
    methods = _write_dataset(target_folder, transfers, link, new_dataset_json, record)
    if link and methods[HARD_LINK] < len(transfers):
        print(f'Hard links were not possible for {len(transfers) - methods[HARD_LINK]} file(s) (e.g. another file '
              f'system): {methods[SYMBOLIC_LINK]} symbolic link(s) to the source and {methods[COPY]} copy(ies) '
              f'instead. Keep {source_folder} in place while you use the new dataset.')
    return target_folder


def _write_dataset(target_folder: str, transfers: List[Tuple[str, str]], link: bool, dataset_json: dict,
                   record: dict) -> Counter:
    """Copies or links (source file, path in the dataset) pairs and writes dataset.json and the split record (with
    how many files were copied or linked) into target_folder, atomically (staged_folder). Returns {method: file
    count}."""
    with staged_folder(target_folder) as temporary_folder:
        for folder in DATASET_SUBFOLDERS:
            os.mkdir(join(temporary_folder, folder))
        methods = Counter(link_or_copy(source_file, join(temporary_folder, destination), link)
                          for source_file, destination in tqdm(transfers, desc='Linking' if link else 'Copying',
                                                               unit='file'))
        save_json(dataset_json, join(temporary_folder, 'dataset.json'), sort_keys=False)
        save_json({**record, 'files': {m: methods[m] for m in (HARD_LINK, SYMBOLIC_LINK, COPY)}},
                  join(temporary_folder, SPLIT_RECORD_FILE_NAME), sort_keys=False)
    return methods


def find_labeled_cases(dataset_folder: str) -> Tuple[dict, Dict[str, dict]]:
    """(dataset.json, {case id: {'images': [...], 'label': ...}}) of a raw dataset, after checking that every case
    has all its channel files and a label."""
    fix = ('Point -d at a fully labelled nnU-Net v2 raw dataset (dataset.json, imagesTr/CASE_XXXX<ending>, '
           'labelsTr/CASE<ending>), e.g. one converted with nnUNetv2_convert_MSD_dataset.')
    dataset_json_file = join(dataset_folder, 'dataset.json')
    if not isfile(dataset_json_file):
        raise SslSplitError(f'{dataset_folder} is not an nnU-Net raw dataset: {dataset_json_file} is missing. {fix}')
    dataset_json = load_json(dataset_json_file)
    for key in ('file_ending', 'labels'):
        if key not in dataset_json:
            raise SslSplitError(f'{dataset_json_file} has no "{key}" entry. {fix}')
    channel_names = dataset_json.get('channel_names', dataset_json.get('modality'))
    if not channel_names:
        raise SslSplitError(f'{dataset_json_file} has no "channel_names" entry. {fix}')
    file_ending = dataset_json['file_ending']
    if 'dataset' not in dataset_json:
        for folder in ('imagesTr', 'labelsTr'):
            if not isdir(join(dataset_folder, folder)):
                raise SslSplitError(f'{dataset_folder} has no {folder} folder. {fix}')
        misnamed = [n for n in subfiles(join(dataset_folder, 'imagesTr'), suffix=file_ending, join=False)
                    if not re.fullmatch(CHANNEL_FILE_PATTERN + re.escape(file_ending), n)]
        if misnamed:
            raise SslSplitError(f'{join(dataset_folder, "imagesTr")}: {shown(misnamed, "file(s)")} not named '
                                f'CASE_XXXX{file_ending} (XXXX: 4-digit channel index). Rename them.')
    cases = labeled_case_files(dataset_folder, dataset_json)
    if not cases:
        raise SslSplitError(f'{join(dataset_folder, "imagesTr")} holds no {file_ending} images. {fix}')

    expected_channels = len(channel_names)
    missing_labels = [c for c, files in cases.items() if not isfile(files['label'])]
    if missing_labels:
        raise SslSplitError(f'{dataset_folder}: no label file (labelsTr/CASE{file_ending}) for '
                            f'{shown(missing_labels)}. Add the labels or remove those images from imagesTr.')
    wrong_channels = [f'{c} ({sum(map(isfile, files["images"]))} found)' for c, files in cases.items()
                      if len(files['images']) != expected_channels or not all(map(isfile, files['images']))]
    if wrong_channels:
        raise SslSplitError(f'{dataset_folder}: every case needs {expected_channels} channel file(s) '
                            f'CASE_0000{file_ending} ... (dataset.json channel_names: {channel_names}), which is not '
                            f'so for {shown(wrong_channels)}. Add the missing channel files or remove those cases.')
    return dataset_json, {str(c): cases[c] for c in sorted(cases)}


def labeled_case_files(dataset_folder: str, dataset_json: dict) -> Dict[str, dict]:
    """nnU-Net's get_filenames_of_train_images_and_targets, without the 12-process pool it starts for the standard
    layout (listing a few hundred files takes milliseconds; forking a large process 12 times takes seconds)."""
    if 'dataset' in dataset_json:
        return get_filenames_of_train_images_and_targets(dataset_folder, dataset_json)
    file_ending = dataset_json['file_ending']
    images_folder = join(dataset_folder, 'imagesTr')
    files = subfiles(images_folder, suffix=file_ending, join=False, sort=True)
    return {str(case_id): {'images': create_paths_fn(images_folder, files, file_ending, case_id),
                           'label': join(dataset_folder, 'labelsTr', case_id + file_ending)}
            for case_id in get_identifiers_from_splitted_dataset_folder(images_folder, file_ending)}


def _case_files(case_id: str, case: Dict, file_ending: str, images_folder: str,
               labels_folder: Optional[str]) -> List[Tuple[str, str, str]]:
    """[(source file, destination folder, destination file name)]: images named CASE_XXXX by their channel order and
    the label CASE, as nnU-Net expects (a source with an explicit file list may name its files differently)."""
    files = [(image, images_folder, f'{case_id}_{channel:04d}{file_ending}')
             for channel, image in enumerate(case['images'])]
    if labels_folder is not None:
        files.append((case['label'], labels_folder, case_id + file_ending))
    return files


def _raw_root() -> str:
    return required_folder(nnUNet_raw, SslSplitError)


def _find_source(source: Union[int, str], raw_root: str) -> Tuple[str, str]:
    """(dataset name, raw dataset folder)."""
    name = resolve_dataset_name(source, SslSplitError)
    folder = join(raw_root, name)
    if not isdir(folder):
        raise SslSplitError(f'Dataset {name} (-d) is not in nnUNet_raw: {folder} does not exist. Put the fully '
                            f'labelled raw dataset there.')
    return name, folder


def _checked_new_id(new_id: int) -> int:
    if not 1 <= new_id <= MAX_DATASET_ID:
        raise SslSplitError(f'-o must be a dataset ID from 1 to {MAX_DATASET_ID}, got {new_id}.')
    return new_id


def _checked_name(name: Optional[str], source_name: str) -> str:
    if name is None:
        return source_name.split('_', 1)[1] + DEFAULT_NAME_SUFFIX
    if not re.fullmatch(DATASET_NAME_PATTERN, name):
        raise SslSplitError(f'--name {name!r} cannot be part of a dataset folder name: use letters, digits, '
                            f'"_", "-" and "." only.')
    return name


def _refuse_used_id(new_id: int) -> None:
    """nnU-Net resolves an ID over nnUNet_raw, nnUNet_preprocessed and nnUNet_results, so a second name for the same
    ID anywhere would make it refuse the dataset later."""
    used = datasets_with_id(new_id)
    if used:
        raise SslSplitError(f'Dataset ID {new_id} (-o) is already used by {", ".join(used)} (in '
                            f'nnUNet_raw, nnUNet_preprocessed or nnUNet_results). Choose a free ID with -o, or delete '
                            f'that dataset first.')


def make_ssl_dataset_entry() -> None:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description='Makes a semi-supervised benchmark dataset from a fully labelled nnU-Net raw dataset: --test '
                    'held-out cases with labels (imagesTs/labelsTs, drawn first), --labeled labelled training cases '
                    f'(imagesTr/labelsTr) and the rest as images only ({UNLABELED_IMAGES_FOLDER_NAME}). Which case '
                    f'went where is recorded in {SPLIT_RECORD_FILE_NAME} beside dataset.json. A dataset with several '
                    f'scans per patient (e.g. ACDC: two frames per patient) needs --group: without it a patient\'s '
                    f'scans can land on both sides, and the test set leaks into training.')
    parser.add_argument('-d', required=True, metavar='SOURCE_ID',
                        help='ID or name of the fully labelled source dataset in nnUNet_raw.')
    parser.add_argument('-o', required=True, type=int, metavar='NEW_ID', help='ID of the new dataset (must be free).')
    count = parser.add_mutually_exclusive_group(required=True)
    count.add_argument('--labeled', type=int, metavar='N', help='Number of labelled training cases (groups with '
                                                                '--group).')
    count.add_argument('--labeled_fraction', type=float, metavar='F',
                       help='Fraction of the non-test cases (groups) to keep labelled: N = round(F * (cases - M)), at '
                            'least 1.')
    parser.add_argument('--test', required=True, type=int, metavar='M',
                        help='Number of held-out test cases (groups with --group).')
    parser.add_argument('--group', default=None, metavar='REGEX',
                        help=f'Keep the cases whose ids share the first capturing group of this regular expression on '
                             f'one side of the split, e.g. {GROUP_EXAMPLE} for patientNNN_frameMM; --labeled, '
                             f'--labeled_fraction and --test then count groups. Default: every case on its own, '
                             f'which leaks test anatomy into training when a patient has several scans.')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED,
                        help=f'Seed of the split (numpy default_rng). Default: {DEFAULT_SEED}.')
    parser.add_argument('--link', action='store_true',
                        help='Hard-link the files instead of copying (symbolic links where that fails).')
    parser.add_argument('--name', default=None,
                        help=f'Name of the new dataset. Default: the source\'s name + "{DEFAULT_NAME_SUFFIX}".')
    args = parser.parse_args()
    try:
        folder = make_ssl_dataset(args.d, args.o, args.test, args.labeled, args.labeled_fraction, args.seed,
                                  args.link, args.name, args.group)
    except SslSplitError as e:
        parser.exit(EXIT_STATUS_BAD_INPUT, f'{COMMAND}: error: {e}\n')
    record = load_json(join(folder, SPLIT_RECORD_FILE_NAME))
    groups = '' if args.group is None else \
        f' in {len(record["labeled_groups"])}, {len(record["unlabeled_groups"])} and {len(record["test_groups"])} ' \
        f'group(s)'
    print(f'Wrote {folder}: {record["num_labeled"]} labelled, {record["num_unlabeled"]} unlabelled and '
          f'{record["num_test"]} test case(s){groups} (seed {args.seed}).')


if __name__ == '__main__':
    make_ssl_dataset_entry()
