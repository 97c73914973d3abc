"""A small but real nnU-Net plans dict (PlainConvUNet or ResEnc, 2D or 3D) for unit tests that need no dataset, and a
DTC trainer built from it."""
import copy
from pathlib import Path

import torch
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunetv2_dtc.level_set_head import record_level_set_channels
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER

_PLAIN_3D = {
    'data_identifier': 'nnUNetPlans_3d_fullres', 'preprocessor_name': 'DefaultPreprocessor', 'batch_size': 2,
    'patch_size': [16, 16, 16], 'median_image_size_in_voxels': [16, 16, 16], 'spacing': [1.0, 1.0, 1.0],
    'normalization_schemes': ['ZScoreNormalization'], 'use_mask_for_norm': [False],
    'resampling_fn_data': 'resample_data_or_seg_to_shape', 'resampling_fn_seg': 'resample_data_or_seg_to_shape',
    'resampling_fn_data_kwargs': {'is_seg': False, 'order': 3, 'order_z': 0, 'force_separate_z': None},
    'resampling_fn_seg_kwargs': {'is_seg': True, 'order': 1, 'order_z': 0, 'force_separate_z': None},
    'resampling_fn_probabilities': 'resample_data_or_seg_to_shape',
    'resampling_fn_probabilities_kwargs': {'is_seg': False, 'order': 1, 'order_z': 0, 'force_separate_z': None},
    'architecture': {
        'network_class_name': 'dynamic_network_architectures.architectures.unet.PlainConvUNet',
        'arch_kwargs': {'n_stages': 3, 'features_per_stage': [4, 8, 16], 'conv_op': 'torch.nn.modules.conv.Conv3d',
                        'kernel_sizes': [[3, 3, 3]] * 3, 'strides': [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
                        'n_conv_per_stage': [1, 1, 1], 'n_conv_per_stage_decoder': [1, 1], 'conv_bias': True,
                        'norm_op': 'torch.nn.modules.instancenorm.InstanceNorm3d',
                        'norm_op_kwargs': {'eps': 1e-05, 'affine': True}, 'dropout_op': None,
                        'dropout_op_kwargs': None, 'nonlin': 'torch.nn.LeakyReLU',
                        'nonlin_kwargs': {'inplace': True}},
        '_kw_requires_import': ['conv_op', 'norm_op', 'dropout_op', 'nonlin']},
    'batch_dice': False,
}


def tiny_plans(dimension: int = 3, residual: bool = False, num_level_set_channels: int = 1) -> dict:
    configuration = copy.deepcopy(_PLAIN_3D)
    arch = configuration['architecture']['arch_kwargs']
    if dimension == 2:
        configuration['patch_size'] = [16, 16]
        configuration['spacing'] = [1.0, 1.0]
        arch['conv_op'] = 'torch.nn.modules.conv.Conv2d'
        arch['norm_op'] = 'torch.nn.modules.instancenorm.InstanceNorm2d'
        arch['kernel_sizes'] = [[3, 3]] * 3
        arch['strides'] = [[1, 1], [2, 2], [2, 2]]
    if residual:
        configuration['architecture']['network_class_name'] = \
            'dynamic_network_architectures.architectures.unet.ResidualEncoderUNet'
        arch['n_blocks_per_stage'] = arch.pop('n_conv_per_stage')
    plans = {'dataset_name': 'Dataset999_Tiny', 'plans_name': DEFAULT_PLANS_IDENTIFIER,
             'image_reader_writer': 'SimpleITKIO',
             'transpose_forward': [0, 1, 2], 'transpose_backward': [0, 1, 2], 'label_manager': 'LabelManager',
             'original_median_spacing_after_transp': [1.0, 1.0, 1.0],
             'original_median_shape_after_transp': [16, 16, 16],
             'foreground_intensity_properties_per_channel': {},
             'configurations': {'tiny': configuration}}
    record_level_set_channels(plans, num_level_set_channels)
    return plans


def tiny_plans_manager(**kwargs) -> PlansManager:
    return PlansManager(tiny_plans(**kwargs))


TINY_DATASET_JSON = {'channel_names': {'0': 'MRI'}, 'labels': {'background': 0, 'a': 1, 'b': 2}, 'numTraining': 2,
                     'file_ending': '.nii.gz'}


def tiny_trainer(preprocessed: Path, trainer_class):
    """`trainer_class` (not initialised) on the tiny plan and TINY_DATASET_JSON, on the CPU. initialize() infers
    nnU-Net's dataset class from the preprocessed folder's file ending, so a placeholder file is put there."""
    data_folder = preprocessed / 'Dataset999_Tiny' / 'nnUNetPlans_3d_fullres'
    data_folder.mkdir(parents=True, exist_ok=True)
    (data_folder / 'placeholder.b2nd').touch()
    return trainer_class({**tiny_plans(), 'continue_training': False}, 'tiny', 0, TINY_DATASET_JSON,
                         torch.device('cpu'))
