"""Checks of a DTC trainer's hyperparameters, run when training starts rather than hours into it."""

_NON_NEGATIVE = ('sdf_loss_weight', 'max_consistency_weight')
_POSITIVE = ('level_set_sharpness', 'consistency_rampup_fraction')


def check_dtc_hyperparameters(trainer) -> None:
    name = type(trainer).__name__
    problems = []
    for attribute in _NON_NEGATIVE + _POSITIVE:
        value = getattr(trainer, attribute)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            problems.append(f'{attribute} = {value!r} is not a number')
        elif attribute in _NON_NEGATIVE and value < 0:
            problems.append(f'{attribute} = {value!r} must be >= 0')
        elif attribute in _POSITIVE and value <= 0:
            problems.append(f'{attribute} = {value!r} must be > 0')
    per_labeled = trainer.unlabeled_patches_per_labeled
    if isinstance(per_labeled, bool) or not isinstance(per_labeled, int) or per_labeled < 1:
        problems.append(f'unlabeled_patches_per_labeled = {per_labeled!r} must be an int >= 1 (0 unlabelled patches: '
                        f'use_unlabeled_data = False)')
    unlabeled = trainer.unlabeled_batch_size
    if unlabeled is not None and (isinstance(unlabeled, bool) or not isinstance(unlabeled, int) or unlabeled < 0):
        problems.append(f'unlabeled_batch_size = {unlabeled!r} must be None (as many as labelled) or an int >= 0')
    if problems:
        raise ValueError(f'{name}: invalid DTC hyperparameters: ' + '; '.join(problems) +
                         '. Set valid values as class attributes in your trainer subclass.')
