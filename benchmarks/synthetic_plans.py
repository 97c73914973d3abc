"""Plans for the speed benchmarks: a synthetic nnU-Net 3d_fullres configuration for any patch size, or a configuration
from a plans file, with the training entries (patch size, batch size, features) overridden on request.

The network topology comes from nnU-Net's own planner function (get_pool_and_conv_props) and defaults, so the
network is the PlainConvUNet nnU-Net would plan for that patch size.
"""
import copy
from typing import Optional, Sequence

from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props

from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER

CONFIGURATION = '3d_fullres'
DATASET_NAME = 'Dataset997_DTCSpeed'
PLANS_NAME = DEFAULT_PLANS_IDENTIFIER
SPACING = (1.0, 1.0, 1.0)
# nnU-Net's ExperimentPlanner defaults (default_experiment_planner.py)
BASE_NUM_FEATURES = 32  # UNet_base_num_features
MAX_NUM_FEATURES_3D = 320  # UNet_max_features_3d
FEATUREMAP_MIN_EDGE_LENGTH = 4  # UNet_featuremap_min_edge_length
CONVS_PER_STAGE = 2  # UNet_blocks_per_stage_encoder / _decoder
NO_POOLING_LIMIT = 999999  # max_numpool the planner passes
# the dataset fingerprint's intensity statistics: only CT normalisation uses them, but the preprocessor looks them up
# for every channel; these are the synthetic images' (dataset_conversion.synthetic_dataset: labels 0-2 plus noise)
FOREGROUND_INTENSITY_PROPERTIES = {'max': 3.0, 'mean': 1.0, 'median': 1.0, 'min': -1.0, 'percentile_00_5': -0.5,
                                   'percentile_99_5': 2.5, 'std': 0.8}

_NETWORK_KWARGS = {
    'conv_op': 'torch.nn.modules.conv.Conv3d', 'conv_bias': True,
    'norm_op': 'torch.nn.modules.instancenorm.InstanceNorm3d', 'norm_op_kwargs': {'eps': 1e-05, 'affine': True},
    'dropout_op': None, 'dropout_op_kwargs': None, 'nonlin': 'torch.nn.LeakyReLU', 'nonlin_kwargs': {'inplace': True},
}


def nnunet_features(num_stages: int) -> list:
    """Features per stage as nnU-Net plans them: 32, 64, ... capped at 320."""
    return [min(MAX_NUM_FEATURES_3D, BASE_NUM_FEATURES * 2 ** i) for i in range(num_stages)]


def plain_unet_architecture(patch_size: Sequence[int], spacing: Sequence[float],
                            features: Optional[Sequence[int]] = None) -> dict:
    """nnU-Net's PlainConvUNet for this patch size; `features` (None: nnU-Net's) is cut or padded to the stages."""
    _, strides, kernels, planned_patch, _ = get_pool_and_conv_props(
        list(spacing), list(patch_size), FEATUREMAP_MIN_EDGE_LENGTH, NO_POOLING_LIMIT)
    if [int(p) for p in planned_patch] != [int(p) for p in patch_size]:
        raise ValueError(f'patch size {list(patch_size)} is not divisible by the pooling nnU-Net plans for it; '
                         f'use {list(map(int, planned_patch))}')
    num_stages = len(strides)
    features = nnunet_features(num_stages) if features is None else list(features)
    features = (features + [features[-1]] * num_stages)[:num_stages]
    return {
        'network_class_name': 'dynamic_network_architectures.architectures.unet.PlainConvUNet',
        'arch_kwargs': {'n_stages': num_stages, 'features_per_stage': features, 'kernel_sizes': kernels,
                        'strides': strides, 'n_conv_per_stage': [CONVS_PER_STAGE] * num_stages,
                        'n_conv_per_stage_decoder': [CONVS_PER_STAGE] * (num_stages - 1), **_NETWORK_KWARGS},
        '_kw_requires_import': ['conv_op', 'norm_op', 'dropout_op', 'nonlin'],
    }


def synthetic_plans(patch_size: Sequence[int], batch_size: int, features: Optional[Sequence[int]] = None) -> dict:
    """A complete nnU-Net plans dict (one channel, z-score normalisation, isotropic spacing) with one configuration
    and the PlainConvUNet nnU-Net plans for the patch size."""
    return _plans(DATASET_NAME, patch_size, batch_size, plain_unet_architecture(patch_size, SPACING, features))


def preprocessing_plans(dataset_name: str, training_plans: dict) -> dict:
    """Plans for a synthetic dataset (one channel, z-score normalisation, isotropic spacing) with the patch size,
    batch size and network of `training_plans`: the entries that do not change the preprocessed data."""
    source = training_plans['configurations'][CONFIGURATION]
    plans = _plans(dataset_name, source['patch_size'], source['batch_size'], copy.deepcopy(source['architecture']))
    plans['configurations'][CONFIGURATION]['batch_dice'] = source['batch_dice']
    return plans


def _plans(dataset_name: str, patch_size: Sequence[int], batch_size: int, architecture: dict) -> dict:
    configuration = {
        'data_identifier': f'{PLANS_NAME}_{CONFIGURATION}', 'preprocessor_name': 'DefaultPreprocessor',
        'batch_size': batch_size, 'patch_size': list(patch_size), 'median_image_size_in_voxels': list(patch_size),
        'spacing': list(SPACING), 'normalization_schemes': ['ZScoreNormalization'], 'use_mask_for_norm': [False],
        'resampling_fn_data': 'resample_data_or_seg_to_shape', 'resampling_fn_seg': 'resample_data_or_seg_to_shape',
        'resampling_fn_data_kwargs': {'is_seg': False, 'order': 3, 'order_z': 0, 'force_separate_z': None},
        'resampling_fn_seg_kwargs': {'is_seg': True, 'order': 1, 'order_z': 0, 'force_separate_z': None},
        'resampling_fn_probabilities': 'resample_data_or_seg_to_shape',
        'resampling_fn_probabilities_kwargs': {'is_seg': False, 'order': 1, 'order_z': 0, 'force_separate_z': None},
        'architecture': architecture,
        'batch_dice': False,
    }
    return {'dataset_name': dataset_name, 'plans_name': PLANS_NAME, 'image_reader_writer': 'SimpleITKIO',
            'transpose_forward': [0, 1, 2], 'transpose_backward': [0, 1, 2], 'label_manager': 'LabelManager',
            'original_median_spacing_after_transp': list(SPACING),
            'original_median_shape_after_transp': list(patch_size),
            'foreground_intensity_properties_per_channel': {'0': dict(FOREGROUND_INTENSITY_PROPERTIES)},
            'configurations': {CONFIGURATION: configuration}}


def plans_from_file(plans_file: str, configuration: str, patch_size: Optional[Sequence[int]] = None,
                    batch_size: Optional[int] = None, features: Optional[Sequence[int]] = None) -> dict:
    """The plans in `plans_file` reduced to `configuration` (resolved, renamed to CONFIGURATION), with the given
    training entries overridden; a new patch size gets the topology nnU-Net plans for it."""
    plans = load_json(plans_file)
    resolved = _resolved_configuration(plans['configurations'], configuration)
    if patch_size is not None:
        resolved['patch_size'] = list(patch_size)
        resolved['architecture'] = plain_unet_architecture(patch_size, resolved['spacing'], features)
    elif features is not None:
        stages = resolved['architecture']['arch_kwargs']['n_stages']
        resolved['architecture']['arch_kwargs']['features_per_stage'] = \
            (list(features) + [features[-1]] * stages)[:stages]
    if batch_size is not None:
        resolved['batch_size'] = batch_size
    plans['configurations'] = {CONFIGURATION: resolved}
    return plans


def dataset_json(num_foreground_labels: int, num_channels: int = 1) -> dict:
    return {'channel_names': {str(i): 'MRI' for i in range(num_channels)},
            'labels': {'background': 0, **{f'label_{i}': i for i in range(1, num_foreground_labels + 1)}},
            'numTraining': 0, 'file_ending': '.nii.gz'}


def _resolved_configuration(configurations: dict, name: str) -> dict:
    configuration = copy.deepcopy(configurations[name])
    parent = configuration.pop('inherits_from', None)
    if parent is None:
        return configuration
    return {**_resolved_configuration(configurations, parent), **configuration}
