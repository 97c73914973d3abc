"""nnUNetv2_dtc_export_vanilla: a DTC model folder as a plain nnUNetTrainer model that stock nnU-Net predicts with.

The segmentation part of a DTC network is vanilla nnU-Net's network: only the full-resolution head carries extra
level-set rows. The export keeps the segmentation rows under vanilla's parameter names, names the trainer
nnUNetTrainer, drops the optimizer state (as nnInteractive's checkpoint clean-up does) and our plans key.
"""
import argparse
import os
import shutil
import sys
from typing import Dict

import torch
from batchgenerators.utilities.file_and_folder_operations import isdir, isfile, join, load_json, save_json
from nnunetv2.paths import nnUNet_results
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
from nnunetv2.utilities.file_path_utilities import get_output_folder
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.level_set_plans import LEVEL_SET_CHANNELS_PLANS_KEY

VANILLA_TRAINER = 'nnUNetTrainer'
HEAD_SUFFIX = '.conv.'  # SegmentationAndLevelSetHead keeps its 1x1 convolution as `.conv`
MODEL_FILES = ('dataset.json', 'dataset_fingerprint.json')


def vanilla_state_dict(dtc_weights: Dict[str, torch.Tensor], num_segmentation_channels: int) \
        -> Dict[str, torch.Tensor]:
    head_keys = [k for k in dtc_weights if k.startswith('decoder.seg_layers.') and HEAD_SUFFIX in k]
    if not head_keys:
        raise ValueError('These weights have no DTC level-set head (decoder.seg_layers.N.conv.*): not a DTC model')
    vanilla = {}
    for key, value in dtc_weights.items():
        if key in head_keys:
            vanilla[key.replace(HEAD_SUFFIX, '.')] = value[:num_segmentation_channels].clone()
        else:
            vanilla[key] = value
    return vanilla


def export_vanilla_checkpoint(checkpoint: dict, num_segmentation_channels: int) -> dict:
    exported = {k: v for k, v in checkpoint.items() if k not in ('optimizer_state', 'grad_scaler_state')}
    exported['network_weights'] = vanilla_state_dict(checkpoint['network_weights'], num_segmentation_channels)
    exported['trainer_name'] = VANILLA_TRAINER
    exported['optimizer_state'] = None
    exported['grad_scaler_state'] = None
    return exported


def export_vanilla(model_folder: str, fold: str, output_folder: str,
                   checkpoint_name: str = 'checkpoint_final.pth') -> str:
    """Writes output_folder/{plans.json, dataset.json, fold_<fold>/<checkpoint_name>} atomically (a temporary
    folder renamed at the end). Refuses an existing output_folder."""
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

    staging = output_folder.rstrip('/') + '.partial'
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(join(staging, f'fold_{fold}'))
    save_json(plans, join(staging, 'plans.json'), sort_keys=False)
    for name in MODEL_FILES:
        if isfile(join(model_folder, name)):
            shutil.copyfile(join(model_folder, name), join(staging, name))
    torch.save(exported, join(staging, f'fold_{fold}', checkpoint_name))
    os.replace(staging, output_folder)
    return output_folder


def export_vanilla_entry() -> None:
    parser = argparse.ArgumentParser(
        prog='nnUNetv2_dtc_export_vanilla',
        description='Exports a trained DTC model as a plain nnUNetTrainer model folder (plans.json, dataset.json, '
                    'fold_X/checkpoint) without the level-set output, so that stock nnU-Net (no nnunetv2-dtc, no '
                    'nnUNet_extTrainer) predicts identical segmentations with nnUNetv2_predict_from_modelfolder.')
    parser.add_argument('-d', required=True, help='Dataset name or ID')
    parser.add_argument('-c', required=True, help='Configuration, e.g. 3d_fullres')
    parser.add_argument('-f', required=True, help='Fold (0-4 or all)')
    parser.add_argument('-tr', default='nnUNetTrainerDTC', help='DTC trainer name. Default: nnUNetTrainerDTC')
    parser.add_argument('-p', default='nnUNetPlans', help='Plans identifier. Default: nnUNetPlans')
    parser.add_argument('--chk', default='checkpoint_final.pth', help='Checkpoint. Default: checkpoint_final.pth')
    parser.add_argument('-o', required=True, help='Output model folder (must not exist)')
    args = parser.parse_args()
    try:
        model_folder = get_output_folder(maybe_convert_to_dataset_name(args.d), args.tr, args.p, args.c)
        if not isdir(model_folder):
            raise FileNotFoundError(f'No model folder {model_folder} in nnUNet_results ({nnUNet_results.get()}): '
                                    f'check -d/-tr/-p/-c')
        export_vanilla(model_folder, args.f, args.o, args.chk)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as e:
        print(f'nnUNetv2_dtc_export_vanilla: error: {e}', file=sys.stderr)
        sys.exit(2)
    print(f'Exported a vanilla nnU-Net model to {args.o}. Predict with:\n    nnUNetv2_predict_from_modelfolder -i IN '
          f'-o OUT -m {args.o} -f {args.f}')
