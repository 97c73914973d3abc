"""One progress line per finished epoch, read from nnUNetv2_train's output while it runs in a subprocess (the demo
and the benchmark show it; nnU-Net itself prints a dozen lines per epoch)."""
import re
from typing import Callable, Optional

# nnUNetTrainer.print_to_log_file lines: '<timestamp>: Epoch 3', '<timestamp>: train_loss -0.5215',
# '<timestamp>: Epoch time: 14.1 s'
EPOCH_START = re.compile(r': Epoch (\d+)$')
TRAIN_LOSS = re.compile(r': train_loss (\S+)$')
EPOCH_TIME = re.compile(r': Epoch time: ([\d.]+) s$')


def epoch_progress(num_epochs: int) -> Callable[[str], Optional[str]]:
    """A function that maps each output line of nnUNetv2_train to None, or, at the end of an epoch, to
    'epoch 2/20: train_loss -0.5215, 14.1 s' (nnU-Net's train loss includes its Dice term, -Dice: below 0)."""
    current = {'epoch': 0, 'train_loss': None}

    def echo(line: str) -> Optional[str]:
        started = EPOCH_START.search(line)
        if started:
            current.update(epoch=int(started.group(1)), train_loss=None)
            return None
        loss = TRAIN_LOSS.search(line)
        if loss:
            current['train_loss'] = loss.group(1)
            return None
        finished = EPOCH_TIME.search(line)
        if finished:
            loss_text = '' if current['train_loss'] is None else f'train_loss {current["train_loss"]}, '
            return f'epoch {current["epoch"] + 1}/{num_epochs}: {loss_text}{float(finished.group(1)):.1f} s'
        return None

    return echo
