"""Per-epoch logging of DTC's loss terms, consistency weight and gradient norms, and their plot beside nnU-Net's
progress.png."""
import textwrap
from os.path import join
from typing import Dict, List

import matplotlib
import numpy as np

matplotlib.use('agg')
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from nnunetv2_dtc.gradient_norms import GRADIENT_NORM_LOG_KEYS  # noqa: E402
from nnunetv2_dtc.utilities.files import save_figure_atomic  # noqa: E402

# train_step output name -> logger key (nnU-Net's LocalLogger only accepts keys it was given up front)
DTC_LOG_KEYS: Dict[str, str] = {
    'supervised_loss': 'dtc_supervised_losses',
    'sdf_loss': 'dtc_sdf_losses',
    'consistency_loss': 'dtc_consistency_losses',
    'consistency_weight': 'dtc_consistency_weights',
}
PROGRESS_PLOT_NAME = 'progress_dtc.png'
GRADIENT_NORM_LABELS = {
    'supervised': 'supervised (nnU-Net\'s loss)',
    'sdf': 'beta x sdf_loss',
    'consistency': 'lambda x consistency, all patches',
    'consistency_unlabeled': 'lambda x consistency, unlabelled patches',
}
# characters of the 13-pt title that fit the 12-inch figure; longer titles (trainer, dataset, configuration and
# fold of a benchmark run: about 115) wrap at a word instead of running off both edges
TITLE_LINE_CHARS = 90


def register_dtc_log_keys(meta_logger) -> None:
    """Makes nnU-Net's LocalLogger accept the DTC keys (it raises on unknown keys)."""
    logged = meta_logger.local_logger.my_fantastic_logging
    for key in (*DTC_LOG_KEYS.values(), *GRADIENT_NORM_LOG_KEYS.values()):
        logged.setdefault(key, [])


def _positive(values: List[float]) -> np.ndarray:
    """Values for a log axis: NaN where a value is not positive (not measured, or exactly 0)."""
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan)


def plot_dtc_progress(meta_logger, output_folder: str, title: str, auxiliary_loss_name: str = 'sdf_loss') -> str:
    """Four panels over epochs: the supervised loss (linear: nnU-Net's Dice term is -Dice, so it goes negative), the
    auxiliary task's loss (named auxiliary_loss_name) and the consistency loss (log), each weighted term's gradient
    norm (log) and lambda(t)."""
    # nnU-Net's own progress plot sets a global seaborn style (font_scale 2.5) that would overlap these labels
    with matplotlib.rc_context(matplotlib.rcParamsDefault):
        return _plot(meta_logger, output_folder, title, auxiliary_loss_name)


def _plot(meta_logger, output_folder: str, title: str, auxiliary_loss_name: str) -> str:
    logged: Dict[str, List[float]] = meta_logger.local_logger.my_fantastic_logging
    num_epochs = min(len(logged[k]) for k in (*DTC_LOG_KEYS.values(), *GRADIENT_NORM_LOG_KEYS.values()))
    epochs = np.arange(num_epochs)
    fig, axes = plt.subplots(4, 1, figsize=(12, 16), sharex=True)
    ax_supervised, ax_losses, ax_gradients, ax_weight = axes
    ax_supervised.plot(epochs, logged[DTC_LOG_KEYS['supervised_loss']][:num_epochs], color='tab:blue', linewidth=2,
                       label='supervised_loss (nnU-Net\'s segmentation loss; its Dice term is -Dice, so it goes '
                             'below 0)')
    ax_supervised.set_ylabel('supervised loss')
    for name, color in (('sdf_loss', 'tab:orange'), ('consistency_loss', 'tab:green')):
        shown = auxiliary_loss_name if name == 'sdf_loss' else name
        ax_losses.plot(epochs, _positive(logged[DTC_LOG_KEYS[name]][:num_epochs]), color=color, linewidth=2,
                       label=f'{shown} (unweighted)')
    ax_losses.set_yscale('log')
    ax_losses.set_ylabel('loss (log scale)')
    for name, label in GRADIENT_NORM_LABELS.items():
        label = f'beta x {auxiliary_loss_name}' if name == 'sdf' else label
        ax_gradients.plot(epochs, _positive(logged[GRADIENT_NORM_LOG_KEYS[name]][:num_epochs]), marker='.',
                          linewidth=2, label=label)
    ax_gradients.set_yscale('log')
    ax_gradients.set_ylabel('gradient norm (log scale)')
    ax_gradients.set_title('gradient norm of each weighted term, first step of each epoch', fontsize=11)
    ax_weight.plot(epochs, logged[DTC_LOG_KEYS['consistency_weight']][:num_epochs], color='k',
                   label='consistency weight lambda(t)', linewidth=2)
    ax_weight.set_ylabel('lambda')
    ax_weight.set_xlabel('epoch')
    ax_weight.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(loc='best', fontsize=10)
    fig.suptitle(textwrap.fill(title, TITLE_LINE_CHARS), fontsize=13)
    fig.tight_layout()
    try:
        return save_figure_atomic(fig, join(output_folder, PROGRESS_PLOT_NAME))
    finally:
        plt.close(fig)
