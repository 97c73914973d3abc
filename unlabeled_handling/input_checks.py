"""Checks of a folder of raw unlabelled images against the dataset, all done before anything is written."""
import os
import re
from itertools import repeat
from typing import Callable, Collection, Dict, List, Tuple, Type

import numpy as np
from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join
from nnunetv2.imageio.base_reader_writer import BaseReaderWriter
from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder, \
    get_identifiers_from_splitted_dataset_folder
from tqdm import tqdm

from nnunetv2_dtc.unlabeled_handling.errors import UnlabeledDataError
from nnunetv2_dtc.utilities.nnunet_paths import CHANNEL_FILE_PATTERN

# nnU-Net's readers give a 2d image a spacing of 999 (times the in-plane spacing) along the first axis; real 3d
# images are far less anisotropic than this ratio
PSEUDO_2D_SPACING_RATIO = 100
MAX_PROBLEMS_SHOWN = 20
MAX_REASON_CHARS = 300


def raise_if_problems(folder: str, problems: List[str]) -> None:
    if not problems:
        return
    shown = [f'  - {p}' for p in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown.append(f'  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more')
    raise UnlabeledDataError(f'Cannot preprocess the unlabelled images in {folder} ({len(problems)} problem(s), '
                             f'nothing was written):\n' + '\n'.join(shown))


def find_unlabeled_cases(images_folder: str, dataset_json: dict, labeled_case_ids: Collection[str],
                         num_processes: int) -> Dict[str, List[str]]:
    """{case id: its image files, one per channel}, after checking names, file endings, sizes and channels."""
    file_ending = dataset_json['file_ending']
    fix = (f'Put the unlabelled images there, named like the labelled ones (CASE_0000{file_ending}, one file per '
           f'channel), or pass -i FOLDER.')
    if not isdir(images_folder):
        raise UnlabeledDataError(f'The unlabelled images folder {images_folder} does not exist. {fix}')
    names = sorted(n for n in os.listdir(images_folder) if not n.startswith('.') and isfile(join(images_folder, n)))
    if not names:
        raise UnlabeledDataError(f'The unlabelled images folder {images_folder} contains no images. {fix}')

    problems = []
    for name in names:
        if not name.endswith(file_ending):
            problems.append(f'{name} does not have the dataset\'s file ending {file_ending!r} (dataset.json '
                            f'"file_ending"): convert it or move it out of the folder')
        elif not re.fullmatch(CHANNEL_FILE_PATTERN + re.escape(file_ending), name):
            problems.append(f'{name} is not named CASE_XXXX{file_ending} (XXXX: 4-digit channel index)')
        elif os.path.getsize(join(images_folder, name)) == 0:
            problems.append(f'{name} is empty (0 bytes)')
    raise_if_problems(images_folder, problems)

    channel_names = dataset_json.get('channel_names', dataset_json.get('modality'))
    expected_suffixes = [f'_{int(c):04d}{file_ending}' for c in sorted(channel_names, key=int)]
    channels = (f'the dataset has {len(channel_names)} channel(s): '
                + ', '.join(f'_{int(c):04d}={n}' for c, n in sorted(channel_names.items(), key=lambda i: int(i[0]))))
    case_ids = [str(i) for i in get_identifiers_from_splitted_dataset_folder(images_folder, file_ending)]
    file_lists = create_lists_from_splitted_dataset_folder(images_folder, file_ending, case_ids,
                                                           max(1, min(num_processes, len(case_ids))))
    for case_id, files in zip(case_ids, file_lists):
        present = {os.path.basename(f) for f in files}
        expected = {case_id + s for s in expected_suffixes}
        problems += [f'{case_id}: channel file {n} is missing ({channels})' for n in sorted(expected - present)]
        problems += [f'{case_id}: {n} is an extra channel file ({channels})' for n in sorted(present - expected)]
        if case_id in labeled_case_ids:
            problems.append(f'{case_id} is also a labelled case id; unlabelled case ids must differ from the '
                            f'labelled ones (rename its files)')
    raise_if_problems(images_folder, problems)
    return {case_id: sorted(files) for case_id, files in zip(case_ids, file_lists)}


def image_layout(data: np.ndarray, spacing) -> str:
    """'2d' or '3d' as nnU-Net's readers return the image, plus the channel count if a file holds several."""
    is_2d = data.shape[1] == 1 and spacing[0] >= PSEUDO_2D_SPACING_RATIO * max(spacing[1:])
    layout = '2d' if is_2d else '3d'
    return layout if data.shape[0] == 1 else f'{layout} with {data.shape[0]} channels in one file'


def read_image_files(image_files: List[str], reader_writer_class: Type[BaseReaderWriter]
                     ) -> Tuple[List[str], List[Tuple[str, str, Tuple[int, ...]]]]:
    """(problems, [(file name, layout, spatial shape)]) from reading each file alone. Runs in a worker process."""
    reader_writer = reader_writer_class()
    problems, read = [], []
    for file in image_files:
        name = os.path.basename(file)
        try:
            data, properties = reader_writer.read_images([file])
        except Exception as e:
            reason = ' '.join(f'{type(e).__name__}: {e}'.split())[:MAX_REASON_CHARS]
            problems.append(f'{name} cannot be read with {reader_writer_class.__name__} (corrupt or truncated?): '
                            f'{reason}')
            continue
        if np.isnan(data).any():
            problems.append(f'{name} contains NaN values')
        read.append((name, image_layout(data, properties['spacing']), tuple(data.shape[1:])))
    if len({shape for _, _, shape in read}) > 1:
        problems.append(f'the channel files {[n for n, _, _ in read]} have different shapes '
                        f'{[s for _, _, s in read]}')
    return problems, read


def check_images_readable(parallel_map: Callable, images_folder: str, cases: Dict[str, List[str]],
                          labeled_image_file: str, reader_writer_class: Type[BaseReaderWriter]) -> None:
    """Reads every image with the dataset's reader (parallel_map: see workers.worker_map) and compares its layout
    with that of a labelled image, read first (so the progress bar counts the unlabelled cases only)."""
    reference_problems, reference_read = read_image_files([labeled_image_file], reader_writer_class)
    if reference_problems:
        raise UnlabeledDataError(f'Cannot read the labelled image {labeled_image_file}: {reference_problems}')
    results = parallel_map(read_image_files, list(cases.values()), repeat(reader_writer_class))
    case_results = list(tqdm(results, total=len(cases), desc='Checking unlabelled images'))
    _, expected_layout, _ = reference_read[0]
    problems = [p for case_problems, _ in case_results for p in case_problems]
    problems += [f'{name} is {layout} but the labelled images are {expected_layout} (e.g. {labeled_image_file})'
                 for _, case_read in case_results for name, layout, _ in case_read if layout != expected_layout]
    raise_if_problems(images_folder, sorted(problems))
