"""Overlay galleries of the test predictions: per seed, the test cases where DTC gains most over vanilla nnU-Net, the
median case and where it loses most, by per-case foreground Dice (without both methods: the last method against the
first; a run alone: its highest, median and lowest Dice). Each row is one case at the slice (first image axis) with
the largest reference area: the image in grey, and the reference and every method's prediction as coloured
contours, one colour per class. 2D datasets have a single slice."""
import textwrap
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
import numpy as np

matplotlib.use('agg')
import matplotlib.pyplot as plt  # noqa: E402
from batchgenerators.utilities.file_and_folder_operations import join, load_json  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json  # noqa: E402

from nnunetv2_dtc.benchmark.comparison import FOREGROUND, with_foreground  # noqa: E402
from nnunetv2_dtc.benchmark.data import BenchmarkDataset  # noqa: E402
from nnunetv2_dtc.benchmark.metrics import DICE  # noqa: E402
from nnunetv2_dtc.benchmark.settings import DTC_TRAINER, METHODS, VANILLA_TRAINER  # noqa: E402
from nnunetv2_dtc.benchmark.training import BenchmarkRun  # noqa: E402
from nnunetv2_dtc.utilities.files import save_figure_atomic  # noqa: E402

GALLERY_PNG = 'overlays_seed{seed}.png'
CROP_MARGIN_FRACTION = 0.3  # context around the foreground of the reference and the predictions, per side
MIN_CROP_MARGIN = 8  # voxels
TITLE_WIDTH = 26  # characters per title line, so that the titles of neighbouring panels do not overlap
LARGEST_GAIN, MEDIAN, LARGEST_LOSS = 'largest gain', 'median', 'largest loss'
HIGHEST_DICE, LOWEST_DICE = 'highest Dice', 'lowest Dice'  # the roles when a run is alone in its seed
COMPARISON_ROLES, SINGLE_RUN_ROLES = (LARGEST_GAIN, MEDIAN, LARGEST_LOSS), (HIGHEST_DICE, MEDIAN, LOWEST_DICE)
PANEL_INCHES = 3.0
TITLE_LINE_INCHES = 0.16  # one line of a 7-point panel title, with its spacing and a margin
# the figure's 10-point title: about 9 characters per inch (progress.py fits 90 13-point ones in 12 inches), one line
# 0.2 inches; it is centred, so it keeps clear of the class legend in the upper right corner on both sides
SUPTITLE_CHARS_PER_INCH = 9
SUPTITLE_LINE_INCHES = 0.2
SUPTITLE_MARGIN_INCHES = 0.4
LEGEND_INCHES = 1.1
CLASS_COLORS = plt.get_cmap('tab10').colors  # one per foreground class or region, in dataset.json's order
CONTOUR_WIDTH = 1.5
REFERENCE = 'reference'


def compared_methods(runs: Sequence[BenchmarkRun]) -> Tuple[BenchmarkRun, BenchmarkRun]:
    """(method, baseline) whose per-case difference orders the gallery: nnUNetTrainerDTC, else the first method that
    trains on the unlabelled images (a variant, not its ablation), else the last run (the baseline itself when it ran
    alone); against vanilla nnU-Net, else the first run."""
    by_method = {run.method: run for run in runs}
    baseline = by_method.get(VANILLA_TRAINER, runs[0])
    candidates = [by_method[DTC_TRAINER]] if DTC_TRAINER in by_method else []
    candidates += [run for run in runs if METHODS[run.method].trains_on_unlabeled_images] + [runs[-1]]
    return next((run for run in candidates if run is not baseline), runs[-1]), baseline


def gallery_ordering(runs: Sequence[BenchmarkRun], dice: Dict[str, Dict[str, Optional[float]]]) \
        -> Tuple[BenchmarkRun, Optional[BenchmarkRun], Dict[str, float]]:
    """(method, baseline, {case: value that orders the gallery}) for the runs of one seed (dice: {run key: {case:
    foreground Dice}}): the method's per-case Dice minus the baseline's (compared_methods); a run alone has no
    baseline (None) and is ordered by its own Dice. Cases without a Dice on either side are left out."""
    method, baseline = compared_methods(runs)
    if method is baseline:
        return method, None, {case: value for case, value in dice[method.key].items() if value is not None}
    return method, baseline, {case: dice[method.key][case] - dice[baseline.key][case] for case in dice[method.key]
                              if dice[method.key][case] is not None and dice[baseline.key].get(case) is not None}


def foreground_dice(result: dict) -> Dict[str, Optional[float]]:
    """{case: foreground Dice} of a folder_metrics result."""
    return {case['case_id']: case['metrics'][FOREGROUND][DICE] for case in with_foreground(result)['metric_per_case']}


def select_cases(values: Dict[str, float], roles: Tuple[str, str, str] = COMPARISON_ROLES) -> List[Tuple[str, str]]:
    """[(role, case)]: the largest value (gain), the median and the smallest (loss), ties broken by case id, as many
    of them as there are distinct cases (with two cases: the largest and the smallest)."""
    order = sorted(values, key=lambda case: (-values[case], case))
    largest, median, smallest = order[0], order[len(order) // 2], order[-1]
    picked = [(roles[0], largest)]
    if median not in (largest, smallest):
        picked.append((roles[1], median))
    if smallest != largest:
        picked.append((roles[2], smallest))
    return picked


def foreground_classes(dataset_json: dict) -> List[Tuple[str, List[int]]]:
    """[(name, label values)] of the foreground classes or regions, in dataset.json's order."""
    return [(name, [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])])
            for name, value in dataset_json['labels'].items() if name not in ('background', 'ignore') and value != 0]


def crop_window(segmentations: Sequence[np.ndarray]) -> Tuple[slice, ...]:
    """The part of a slice around the foreground of all the segmentations, with a margin; the whole slice when there
    is no foreground."""
    foreground = np.any([segmentation > 0 for segmentation in segmentations], axis=0)
    if not foreground.any():
        return tuple(slice(None) for _ in foreground.shape)
    window = []
    for axis, size in enumerate(foreground.shape):
        present = np.flatnonzero(foreground.any(axis=tuple(a for a in range(foreground.ndim) if a != axis)))
        margin = max(MIN_CROP_MARGIN, int(CROP_MARGIN_FRACTION * (present[-1] - present[0] + 1)))
        window.append(slice(max(0, present[0] - margin), min(size, present[-1] + margin + 1)))
    return tuple(window)


def largest_reference_slice(reference: np.ndarray) -> int:
    """Index along the first axis with the most foreground voxels (the middle one when there is none)."""
    areas = (reference > 0).reshape(reference.shape[0], -1).sum(1)
    return int(np.argmax(areas)) if areas.max() > 0 else reference.shape[0] // 2


def gallery_title(seed: int, method_name: str, baseline_name: Optional[str], figure_inches: float) -> str:
    """The gallery's title (baseline_name None: a run alone), wrapped at a space (never inside "nnU-Net") so that
    every line fits between the legend's width on either side."""
    compared = method_name if baseline_name is None else f'{method_name} minus {baseline_name}'
    return textwrap.fill(f'Seed {seed}: test cases by per-case foreground Dice of {compared}',
                         int(SUPTITLE_CHARS_PER_INCH * (figure_inches - 2 * LEGEND_INCHES)), break_on_hyphens=False)


def overlay_gallery(seed: int, runs: Sequence[BenchmarkRun], results: Dict[str, dict], prediction_folders:
                    Dict[str, str], dataset: BenchmarkDataset, out: str) -> dict:
    """Draws the gallery of one seed (results and prediction_folders by run key) into out; returns its record
    {'file', 'seed', 'method', 'baseline', 'cases': [{'role', 'case', 'slice', 'dice': {run key: value}}]}."""
    dice = {run.key: foreground_dice(results[run.key]) for run in runs}
    method, baseline, ordering = gallery_ordering(runs, dice)
    dataset_json = load_json(join(runs[0].model_folder, 'dataset.json'))
    classes = foreground_classes(dataset_json)
    example = join(dataset.test_images, f'{dataset.test_cases[0]}_0000{dataset.file_ending}')
    reader = determine_reader_writer_from_dataset_json(dataset_json, example)()
    columns = [REFERENCE, *[run.key for run in runs]]
    selected = select_cases(ordering, SINGLE_RUN_ROLES if baseline is None else COMPARISON_ROLES) if ordering else []
    num_rows = max(1, len(selected))
    # a panel's title: the case, the method name wrapped, its Dice
    title_lines = 2 + max(len(textwrap.wrap(METHODS[run.method].name, TITLE_WIDTH)) for run in runs)
    width = PANEL_INCHES * len(columns)
    suptitle = gallery_title(seed, METHODS[method.method].name, baseline and METHODS[baseline.method].name, width)
    suptitle_inches = SUPTITLE_LINE_INCHES * (suptitle.count('\n') + 1) + SUPTITLE_MARGIN_INCHES
    height = (PANEL_INCHES + TITLE_LINE_INCHES * title_lines) * num_rows + suptitle_inches
    # constrained layout makes room for every panel title and keeps the legend outside the panels; tight_layout
    # let a title reach into the image above it where the image's aspect fills the cell
    figure, axes = plt.subplots(num_rows, len(columns), squeeze=False, figsize=(width, height), layout='constrained')
    cases = []
    for row, (role, case) in zip(axes, selected):
        image = reader.read_images([join(dataset.test_images, f'{case}_0000{dataset.file_ending}')])[0][0]
        segmentations = {REFERENCE: reader.read_seg(join(dataset.test_labels, case + dataset.file_ending))[0][0]}
        for run in runs:
            segmentations[run.key] = reader.read_seg(join(prediction_folders[run.key],
                                                          case + dataset.file_ending))[0][0]
        z = largest_reference_slice(segmentations[REFERENCE])
        window = crop_window([segmentations[column][z] for column in columns])
        for ax, column in zip(row, columns):
            _draw(ax, image[z][window], segmentations[column][z][window], classes)
            if column == REFERENCE:
                ax.set_title(f'{case}\nreference', fontsize=8)
            else:
                run = next(r for r in runs if r.key == column)
                value = dice[column][case]
                shown = '–' if value is None else f'{value:.3f}'
                ax.set_title(f'{case}\n{textwrap.fill(METHODS[run.method].name, TITLE_WIDTH)}\nDice {shown}',
                             fontsize=7)
        row[0].set_ylabel(f'{role}\nslice {z}', fontsize=9)
        cases.append({'role': role, 'case': case, 'slice': z, 'gain': None if baseline is None else ordering[case],
                      'dice': {run.key: dice[run.key][case] for run in runs}})
    handles = [Line2D([0], [0], color=CLASS_COLORS[i % len(CLASS_COLORS)], linewidth=2, label=name)
               for i, (name, _) in enumerate(classes)]
    figure.legend(handles=handles, loc='outside right upper', fontsize=8, title='class')
    figure.suptitle(suptitle, fontsize=10)
    name = GALLERY_PNG.format(seed=seed)
    try:
        save_figure_atomic(figure, join(out, name))
    finally:
        plt.close(figure)
    return {'file': name, 'seed': seed, 'method': method.key, 'baseline': baseline and baseline.key, 'cases': cases}


def _draw(ax, image: np.ndarray, segmentation: np.ndarray, classes: List[Tuple[str, List[int]]]) -> None:
    ax.imshow(image, cmap='gray', interpolation='nearest')
    for i, (_, values) in enumerate(classes):
        mask = np.isin(segmentation, values)
        if mask.any() and not mask.all():
            ax.contour(mask.astype(np.float32), levels=[0.5], colors=[CLASS_COLORS[i % len(CLASS_COLORS)]],
                       linewidths=CONTOUR_WIDTH)
    ax.set_xticks([])
    ax.set_yticks([])
