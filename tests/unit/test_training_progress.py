"""The per-epoch progress line read from nnUNetv2_train's output."""
from nnunetv2_dtc.utilities.training_progress import epoch_progress

# as nnUNetTrainer.print_to_log_file prints them
NNUNET_LINES = ['2026-12-02 07:30:01.000001: ', '2026-12-02 07:30:01.000002: Epoch 1',
                '2026-12-02 07:30:01.000003: Current learning rate: 0.00536',
                '2026-12-02 07:30:15.000004: train_loss -0.5215', '2026-12-02 07:30:15.000005: val_loss -0.6',
                '2026-12-02 07:30:15.000006: Pseudo dice [np.float32(0.8), np.float32(0.7)]',
                '2026-12-02 07:30:15.000007: Epoch time: 14.13 s']


def test_one_line_per_epoch_with_its_loss_and_time():
    echo = epoch_progress(3)
    shown = [line for line in map(echo, NNUNET_LINES) if line]
    assert shown == ['epoch 2/3: train_loss -0.5215, 14.1 s']


def test_an_epoch_without_a_loss_line_still_shows_its_time():
    echo = epoch_progress(1)
    assert echo('x: Epoch 0') is None
    assert echo('x: Epoch time: 2.0 s') == 'epoch 1/1: 2.0 s'
