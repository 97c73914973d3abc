"""nnUNetv2_dtc_export_vanilla: a DTC model folder as a plain nnUNetTrainer model that stock nnU-Net predicts with.

The segmentation part of a DTC network is vanilla nnU-Net's network: only the full-resolution head carries extra
level-set rows. The export keeps the segmentation rows under vanilla's parameter names, names the trainer
nnUNetTrainer, drops the optimizer state (as nnInteractive's checkpoint clean-up does) and our plans key.
"""
import argparse
import os
import shutil

import torch
from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json, save_json
from nnunetv2.paths import nnUNet_results
from nnunetv2.utilities.file_path_utilities import get_output_folder
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.level_set_head import LEVEL_SET_CHANNELS_PLANS_KEY, vanilla_state_dict
from nnunetv2_dtc.utilities.cli import exit_with_error
from nnunetv2_dtc.utilities.files import staged_folder
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER, resolve_dataset_name

VANILLA_TRAINER = 'nnUNetTrainer'
MODEL_FILES = ('dataset.json', 'dataset_fingerprint.json')
COMMAND = 'nnUNetv2_dtc_export_vanilla'


def export_vanilla_checkpoint(checkpoint: dict, num_segmentation_channels: int) -> dict:
    exported = {k: v for k, v in checkpoint.items() if k not in ('optimizer_state', 'grad_scaler_state')}
    exported['network_weights'] = vanilla_state_dict(checkpoint['network_weights'], num_segmentation_channels)
    exported['trainer_name'] = VANILLA_TRAINER
    exported['optimizer_state'] = None
    exported['grad_scaler_state'] = None
    return exported


def export_vanilla(model_folder: str, fold: str, output_folder: str,
                   checkpoint_name: str = 'checkpoint_final.pth') -> str:
    """Writes output_folder/{plans.json, dataset.json, fold_<fold>/<checkpoint_name>} atomically (staged_folder).
    Refuses an existing output_folder."""
    source = join(model_folder, f'fold_{fold}', checkpoint_name)
    for required in (join(model_folder, 'plans.json'), join(model_folder, 'dataset.json'), source):
        if not isfile(required):
            raise FileNotFoundError(f'{required} not found: is {model_folder} a trained DTC model folder (train it '
                                    f'first, or pass the right -tr/-p/-c/-f/--chk)?')
    if os.path.exists(output_folder):
        raise FileExistsError(f'{output_folder} exists; choose another -o or remove it')
    plans = load_json(join(model_folder, 'plans.json'))
    plans.pop(LEVEL_SET_CHANNELS_PLANS_KEY, None)
    dataset_json = load_json(join(model_folder, 'dataset.json'))
    label_manager = PlansManager(plans).get_label_manager(dataset_json)
    checkpoint = torch.load(source, map_location='cpu', weights_only=False)
    exported = export_vanilla_checkpoint(checkpoint, label_manager.num_segmentation_heads)

    with staged_folder(output_folder) as staging:
        os.makedirs(join(staging, f'fold_{fold}'))
        save_json(plans, join(staging, 'plans.json'), sort_keys=False)
        for name in MODEL_FILES:
            if isfile(join(model_folder, name)):
                shutil.copyfile(join(model_folder, name), join(staging, name))
        torch.save(exported, join(staging, f'fold_{fold}', checkpoint_name))
    return output_folder


def export_vanilla_entry() -> None:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description='Exports a trained DTC model as a plain nnUNetTrainer model folder (plans.json, dataset.json, '
                    'fold_X/checkpoint) without the level-set output, so that stock nnU-Net (no nnunetv2-dtc, no '
                    'nnUNet_extTrainer) predicts identical segmentations with nnUNetv2_predict_from_modelfolder.')
    parser.add_argument('-d', required=True, help='Dataset name or ID')
    parser.add_argument('-c', required=True, help='Configuration, e.g. 3d_fullres')
    parser.add_argument('-f', required=True, help='Fold (0-4 or all)')
    parser.add_argument('-tr', default='nnUNetTrainerDTC', help='DTC trainer name. Default: nnUNetTrainerDTC')
    parser.add_argument('-p', default=DEFAULT_PLANS_IDENTIFIER,
                        help=f'Plans identifier. Default: {DEFAULT_PLANS_IDENTIFIER}')
    parser.add_argument('--chk', default='checkpoint_final.pth', help='Checkpoint. Default: checkpoint_final.pth')
    parser.add_argument('-o', required=True, help='Output model folder (must not exist)')
    args = parser.parse_args()
    try:
        model_folder = get_output_folder(resolve_dataset_name(args.d, ValueError), args.tr, args.p, args.c)
        if not isdir(model_folder):
            raise FileNotFoundError(f'No model folder {model_folder} in nnUNet_results ({nnUNet_results.get()}): '
                                    f'check -d/-tr/-p/-c')
        export_vanilla(model_folder, args.f, args.o, args.chk)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as e:
        exit_with_error(COMMAND, e)
    print(f'Exported a vanilla nnU-Net model to {args.o}. Predict with:\n    nnUNetv2_predict_from_modelfolder -i IN '
          f'-o OUT -m {args.o} -f {args.f}')
