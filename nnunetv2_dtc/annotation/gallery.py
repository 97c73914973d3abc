"""The ranking's PNG: for each of the most uncertain cases, its slice of largest dual-task disagreement: the image,
both views (the largest over the classes at each pixel) and their absolute difference."""
from dataclasses import dataclass
from typing import Sequence

import matplotlib
import numpy as np

matplotlib.use('agg')
import matplotlib.pyplot as plt  # noqa: E402

from nnunetv2_dtc.utilities.files import save_figure_atomic  # noqa: E402

PANEL_INCHES = 3.0
COLUMNS = ('image', 'segmentation view', 'auxiliary-task view', '|difference|')


@dataclass(frozen=True)
class CaseSlice:
    case: str
    score: float
    index: int  # along the first spatial axis of the preprocessed case
    image: np.ndarray
    segmentation_view: np.ndarray
    task_view: np.ndarray


def largest_disagreement_slice(case: str, score: float, image: np.ndarray, task_view: np.ndarray,
                               segmentation_view: np.ndarray) -> CaseSlice:
    """The case's slice (first spatial axis) with the largest summed |difference| over classes and pixels."""
    difference = np.abs(task_view - segmentation_view).sum(0)
    index = int(np.argmax(difference.reshape(difference.shape[0], -1).sum(1)))
    return CaseSlice(case, score, index, image[index], segmentation_view[:, index].max(0),
                     task_view[:, index].max(0))


def save_gallery(slices: Sequence[CaseSlice], path: str, task_name: str) -> str:
    figure, axes = plt.subplots(max(1, len(slices)), len(COLUMNS), squeeze=False,
                                figsize=(PANEL_INCHES * len(COLUMNS), (PANEL_INCHES + 0.3) * max(1, len(slices)) + 0.6))
    for row, case in zip(axes, slices):
        panels = (case.image, case.segmentation_view, case.task_view,
                  np.abs(case.task_view - case.segmentation_view))
        for column, (ax, panel, title) in enumerate(zip(row, panels, COLUMNS)):
            ax.imshow(panel, cmap='gray' if column == 0 else 'magma', vmin=None if column == 0 else 0,
                      vmax=None if column == 0 else 1, interpolation='nearest')
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f'{case.case}\nscore {case.score:.4f}\nslice {case.index}', fontsize=9)
    figure.suptitle(f'Most uncertain cases first ({task_name}; views in [0, 1])', fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    try:
        return save_figure_atomic(figure, path)
    finally:
        plt.close(figure)
