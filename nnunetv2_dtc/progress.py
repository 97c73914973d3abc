"""Per-epoch logging of DTC's loss terms and consistency weight, and their plot beside nnU-Net's progress.png."""
from os.path import join
from typing import Dict, List

import matplotlib

matplotlib.use('agg')
import matplotlib.pyplot as plt  # noqa: E402

# train_step output name -> logger key (nnU-Net's LocalLogger only accepts keys it was given up front)
DTC_LOG_KEYS: Dict[str, str] = {
    'supervised_loss': 'dtc_supervised_losses',
    'sdf_loss': 'dtc_sdf_losses',
    'consistency_loss': 'dtc_consistency_losses',
    'consistency_weight': 'dtc_consistency_weights',
}
PROGRESS_PLOT_NAME = 'progress_dtc.png'


def register_dtc_log_keys(meta_logger) -> None:
    """Makes nnU-Net's LocalLogger accept the DTC keys (it raises on unknown keys)."""
    logged = meta_logger.local_logger.my_fantastic_logging
    for key in DTC_LOG_KEYS.values():
        logged.setdefault(key, [])


def plot_dtc_progress(meta_logger, output_folder: str) -> str:
    logged: Dict[str, List[float]] = meta_logger.local_logger.my_fantastic_logging
    num_epochs = min(len(logged[k]) for k in DTC_LOG_KEYS.values())
    epochs = list(range(num_epochs))
    fig, (ax_loss, ax_weight) = plt.subplots(2, 1, figsize=(12, 10))
    for name in ('supervised_loss', 'sdf_loss', 'consistency_loss'):
        ax_loss.plot(epochs, logged[DTC_LOG_KEYS[name]][:num_epochs], label=name, linewidth=2)
    ax_loss.set_xlabel('epoch')
    ax_loss.set_ylabel('loss (unweighted)')
    ax_loss.set_yscale('symlog', linthresh=1e-3)
    ax_loss.legend()
    ax_weight.plot(epochs, logged[DTC_LOG_KEYS['consistency_weight']][:num_epochs], color='k',
                   label='consistency weight lambda(t)', linewidth=2)
    ax_weight.set_xlabel('epoch')
    ax_weight.set_ylabel('lambda')
    ax_weight.legend()
    fig.tight_layout()
    path = join(output_folder, PROGRESS_PLOT_NAME)
    fig.savefig(path)
    plt.close(fig)
    return path
