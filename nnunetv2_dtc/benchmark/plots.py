"""The benchmark's figures: per-case paired Dice, HD95 box plots, and every run's training curves from its
checkpoint logging. Each PNG is written atomically."""
import math
import textwrap
from typing import Dict, Sequence

import matplotlib

matplotlib.use('agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from nnunetv2_dtc.benchmark.comparison import method_case_values  # noqa: E402
from nnunetv2_dtc.benchmark.metrics import DICE, HD95_MM  # noqa: E402
from nnunetv2_dtc.benchmark.report import TABLE_TITLES  # noqa: E402
from nnunetv2_dtc.benchmark.settings import METHODS  # noqa: E402
from nnunetv2_dtc.benchmark.training import BenchmarkRun  # noqa: E402
from nnunetv2_dtc.progress import DTC_LOG_KEYS  # noqa: E402
from nnunetv2_dtc.utilities.files import save_figure_atomic  # noqa: E402

PAIRED_DICE_PNG, HD95_PNG, CURVES_PNG = 'paired_dice.png', 'hd95_boxplot.png', 'training_curves.png'
FIGURE_DESCRIPTIONS = {
    PAIRED_DICE_PNG: 'per-case foreground Dice of every method, one line per test case (averaged over seeds)',
    HD95_PNG: 'per-case foreground HD95 (mm) per method (cases without a defined distance left out)',
    CURVES_PNG: 'every logged loss term per epoch for each run (train/val loss, DTC terms, consistency weight)',
}
PANEL_SIZE = (6.0, 4.5)  # inches per panel
# the x axis of the per-method panels: each method's name wrapped at a space, and the panel widened so that
# neighbouring names do not overlap (8 methods with issue #14's long variant names ran into each other)
METHOD_LABEL_CHARS = 16
METHOD_INCHES = 1.1
CURVES_PER_ROW = 3
# each training-curve panel's legend sits under its axes, where neither axis draws: inside, the consistency weight
# (drawn on a twin axis that legend placement does not see) ran under the legend as it reached 1 at the top right
CURVES_LEGEND_COLUMNS = 3
CURVES_LEGEND_TOP = -0.16  # axes fraction, below the epoch label
WEIGHT_KEY = DTC_LOG_KEYS['consistency_weight']


def _method_labels(methods: Sequence[str]) -> list:
    return [textwrap.fill(METHODS[m].name, METHOD_LABEL_CHARS, break_on_hyphens=False) for m in methods]


def _per_method_figure(runs: Sequence[BenchmarkRun], num_panels: int):
    width = max(PANEL_SIZE[0], METHOD_INCHES * len({run.method for run in runs}))
    return plt.subplots(1, num_panels, figsize=(width * num_panels, PANEL_SIZE[1]), squeeze=False)


def paired_dice_figure(runs: Sequence[BenchmarkRun], results: Dict[str, Dict[str, dict]], path: str) -> str:
    fig, axes = _per_method_figure(runs, len(results))
    for ax, (postprocessing, by_trainer) in zip(axes[0], results.items()):
        values = method_case_values(runs, by_trainer, DICE)
        methods = list(values)
        for case in next(iter(values.values())):
            ax.plot(range(len(methods)), [values[m][case] for m in methods], color='0.6', marker='o', linewidth=1)
        means = [sum(v for v in values[m].values()) / len(values[m]) for m in methods]
        ax.plot(range(len(methods)), means, color='k', marker='D', linewidth=2.5, label='mean')
        ax.set_xticks(range(len(methods)), _method_labels(methods), fontsize=8)
        ax.set_ylabel('foreground Dice per test case')
        ax.set_title(TABLE_TITLES[postprocessing], fontsize=9)
        ax.legend()
    fig.tight_layout()
    return _saved(fig, path)


def hd95_figure(runs: Sequence[BenchmarkRun], results: Dict[str, Dict[str, dict]], path: str) -> str:
    fig, axes = _per_method_figure(runs, len(results))
    for ax, (postprocessing, by_trainer) in zip(axes[0], results.items()):
        values = method_case_values(runs, by_trainer, HD95_MM)
        methods = list(values)
        ax.boxplot([[v for v in values[m].values() if v is not None] for m in methods])
        ax.set_xticks(range(1, len(methods) + 1), _method_labels(methods), fontsize=8)
        ax.set_ylabel('foreground HD95 per test case (mm)')
        ax.set_title(TABLE_TITLES[postprocessing], fontsize=9)
    fig.tight_layout()
    return _saved(fig, path)


def training_curves_figure(runs: Sequence[BenchmarkRun], infos: Dict[str, dict], path: str) -> str:
    return _saved(_training_curves(runs, infos), path)


def _training_curves(runs: Sequence[BenchmarkRun], infos: Dict[str, dict]):
    columns = min(CURVES_PER_ROW, len(runs))
    rows = math.ceil(len(runs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows), squeeze=False)
    for ax in axes.flat[len(runs):]:
        ax.axis('off')
    for ax, run in zip(axes.flat, runs):
        curves = infos[run.key]['curves']
        for key, values in curves.items():
            if key != WEIGHT_KEY:
                ax.plot(range(len(values)), values, marker='.', label=key)
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel('loss')
        ax.set_title(f'{run.label}\n{run.trainer}', fontsize=8)
        handles, labels = ax.get_legend_handles_labels()
        if WEIGHT_KEY in curves:
            weight_axis = ax.twinx()
            weight_axis.plot(range(len(curves[WEIGHT_KEY])), curves[WEIGHT_KEY], color='k', linestyle='--',
                             marker='.', label=WEIGHT_KEY)
            weight_axis.set_ylabel('consistency weight')
            more_handles, more_labels = weight_axis.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        ax.legend(handles, labels, fontsize=7, loc='upper center', bbox_to_anchor=(0.5, CURVES_LEGEND_TOP),
                  ncol=CURVES_LEGEND_COLUMNS)
    fig.tight_layout()
    return fig


def _saved(fig, path: str) -> str:
    try:
        return save_figure_atomic(fig, path)
    finally:
        plt.close(fig)
