"""Where nnU-Net finds the DTC trainers: the folder to put into nnUNet_extTrainer."""
import os
import sys
from typing import Dict

import nnunetv2_dtc.trainers

EXT_TRAINER_VARIABLE = 'nnUNet_extTrainer'


def trainer_dir() -> str:
    return os.path.dirname(os.path.abspath(nnunetv2_dtc.trainers.__file__))


def ext_trainer_is_set_up() -> bool:
    return trainer_dir() in os.environ.get(EXT_TRAINER_VARIABLE, '').split(os.pathsep)


def missing_ext_trainer_message() -> str:
    return (f'{EXT_TRAINER_VARIABLE} does not include the DTC trainers, so nnUNetv2_train and nnUNetv2_predict '
            f'cannot find nnUNetTrainerDTC. Run:\n    export {EXT_TRAINER_VARIABLE}=$(nnUNetv2_dtc_trainer_dir)')


def ext_trainer_value(*extra_folders: str) -> str:
    """nnUNet_extTrainer value naming the DTC trainers and `extra_folders` (e.g. generated_trainers' folders)."""
    return os.pathsep.join([trainer_dir(), *extra_folders])


def environment_with_trainers(environment: Dict[str, str], *extra_folders: str) -> Dict[str, str]:
    return {**environment, EXT_TRAINER_VARIABLE: ext_trainer_value(*extra_folders)}


def trainer_dir_entry() -> None:
    """Prints the trainer folder (for `export nnUNet_extTrainer=$(nnUNetv2_dtc_trainer_dir)`); with --check, exits
    with status 1 and says what to export when the variable does not include it."""
    if '--check' in sys.argv[1:]:
        if not ext_trainer_is_set_up():
            print(missing_ext_trainer_message(), file=sys.stderr)
            sys.exit(1)
        print(f'{EXT_TRAINER_VARIABLE} is set up: {trainer_dir()}')
        return
    if any(a in ('-h', '--help') for a in sys.argv[1:]):
        print('usage: nnUNetv2_dtc_trainer_dir [--check]\n\nPrints the folder holding the nnUNetTrainerDTC trainers. '
              'Use it as\n    export nnUNet_extTrainer=$(nnUNetv2_dtc_trainer_dir)\n--check: exit 1 with '
              'instructions if nnUNet_extTrainer does not include it.')
        return
    print(trainer_dir())
