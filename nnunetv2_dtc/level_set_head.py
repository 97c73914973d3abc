"""DTC's second task as an extra output of the nnU-Net network (the level set, or another auxiliary task: the head
only holds its raw channels, one per foreground class or region).

DTC (Luo et al., AAAI 2021) predicts a segmentation and a level set (tanh) from the same last decoder
features with two 1x1 convolutions. Two 1x1 convolutions on the same input are one 1x1 convolution with
more output channels, so the highest-resolution segmentation layer of the nnU-Net decoder is replaced by
`SegmentationAndLevelSetHead`, which computes both at once. The head is always built, so checkpoints load
in every mode, and it only emits the level-set channels while training with them enabled: in eval mode
the network returns exactly what vanilla nnU-Net returns.

`build_network_architecture` is static and only sees the plans, yet the number of level-set channels depends on
dataset.json (classes vs regions). The DTC trainer records it in the plans it writes beside the model (plans.json),
so that nnU-Net's predictor rebuilds exactly the trained network. `vanilla_state_dict` undoes the head on a state
dict, for stock nnU-Net.
"""
from typing import Dict, Tuple

import torch
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from torch import nn

LEVEL_SET_CHANNELS_PLANS_KEY = 'dtc_num_level_set_channels'
# where dynamic-network-architectures' decoders keep their output layers, the full-resolution one last
SEGMENTATION_LAYERS_PREFIX = 'decoder.seg_layers.'
HEAD_CONV = 'conv'  # SegmentationAndLevelSetHead.conv, its 1x1 convolution, in state-dict keys
CONV_PARAMETERS = ('weight', 'bias')


class SegmentationAndLevelSetHead(nn.Module):
    def __init__(self, conv_op, in_channels: int, num_segmentation_channels: int, num_level_set_channels: int):
        super().__init__()
        self.conv = conv_op(in_channels, num_segmentation_channels + num_level_set_channels, 1, 1, 0, bias=True)
        self.num_segmentation_channels = num_segmentation_channels
        self.num_level_set_channels = num_level_set_channels
        self.emit_level_set = True
        # the ranking command's switch: the auxiliary channels in eval mode too (never set by training or prediction)
        self.emit_in_eval = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.emit_level_set and (self.training or self.emit_in_eval):
            return self.conv(x)
        c = self.num_segmentation_channels
        return self.conv._conv_forward(x, self.conv.weight[:c], self.conv.bias[:c])


def add_level_set_head(network: nn.Module, num_level_set_channels: int) -> nn.Module:
    """Replaces the full-resolution segmentation layer of an nnU-Net decoder by a `SegmentationAndLevelSetHead`.

    The new head starts from the vanilla layer's weights for the segmentation channels.
    """
    seg_layers = network.decoder.seg_layers
    vanilla = seg_layers[-1]
    head = SegmentationAndLevelSetHead(type(vanilla), vanilla.in_channels, vanilla.out_channels,
                                       num_level_set_channels)
    with torch.no_grad():
        head.conv.weight[:vanilla.out_channels] = vanilla.weight
        head.conv.bias[:vanilla.out_channels] = vanilla.bias
    seg_layers[-1] = head
    return network


def get_level_set_head(network: nn.Module) -> SegmentationAndLevelSetHead:
    head = network.decoder.seg_layers[-1]
    if not isinstance(head, SegmentationAndLevelSetHead):
        raise TypeError(f'{type(network).__name__} has no DTC level-set head; build it with add_level_set_head')
    return head


def split_segmentation_and_auxiliary(full_resolution_output: torch.Tensor, num_segmentation_channels: int) \
        -> Tuple[torch.Tensor, torch.Tensor]:
    """Splits the head's training output into segmentation logits and the auxiliary task's raw channels (views, no
    copy). `split`, not two slices: its backward writes both gradients into one tensor, where each slice's backward
    would zero-fill a full-size gradient and add them."""
    if full_resolution_output.shape[1] <= num_segmentation_channels:
        raise RuntimeError('The network returned no level-set channels: is it in training mode with '
                           'deep supervision enabled?')
    num_level_set_channels = full_resolution_output.shape[1] - num_segmentation_channels
    seg_logits, auxiliary = full_resolution_output.split([num_segmentation_channels, num_level_set_channels], 1)
    return seg_logits, auxiliary


def split_segmentation_and_level_set(full_resolution_output: torch.Tensor, num_segmentation_channels: int) \
        -> Tuple[torch.Tensor, torch.Tensor]:
    """Segmentation logits and DTC's tanh level set (LevelSetTask's activation of the auxiliary channels)."""
    seg_logits, auxiliary = split_segmentation_and_auxiliary(full_resolution_output, num_segmentation_channels)
    return seg_logits, torch.tanh(auxiliary)


def record_level_set_channels(plans: dict, num_level_set_channels: int) -> None:
    plans[LEVEL_SET_CHANNELS_PLANS_KEY] = int(num_level_set_channels)


def num_level_set_channels_from_plans(plans_manager: PlansManager) -> int:
    try:
        return int(plans_manager.plans[LEVEL_SET_CHANNELS_PLANS_KEY])
    except KeyError:
        raise KeyError(f'The plans {plans_manager.plans_name!r} do not say how many DTC level-set channels the '
                       f'network has ({LEVEL_SET_CHANNELS_PLANS_KEY!r}). They are recorded by nnUNetTrainerDTC in '
                       f'the plans.json of its model folder: predict from that folder, or construct '
                       f'nnUNetTrainerDTC before building its network.') from None


def vanilla_state_dict(dtc_weights: Dict[str, torch.Tensor], num_segmentation_channels: int) \
        -> Dict[str, torch.Tensor]:
    """The inverse of add_level_set_head on a state dict: the head's convolution, at the last of the decoder's
    seg_layers, becomes vanilla's segmentation layer with the segmentation rows only; every other weight is kept."""
    indices = {int(k[len(SEGMENTATION_LAYERS_PREFIX):].split('.')[0]) for k in dtc_weights
               if k.startswith(SEGMENTATION_LAYERS_PREFIX)}
    head = f'{SEGMENTATION_LAYERS_PREFIX}{max(indices)}.' if indices else None
    renamed = {f'{head}{HEAD_CONV}.{p}': f'{head}{p}' for p in CONV_PARAMETERS} if head else {}
    if not renamed or not all(k in dtc_weights for k in renamed):
        raise ValueError(f'These weights have no DTC level-set head ({SEGMENTATION_LAYERS_PREFIX}N.{HEAD_CONV}.*, '
                         f'N the last output layer): not a DTC model')
    return {renamed.get(key, key): value[:num_segmentation_channels].clone() if key in renamed else value
            for key, value in dtc_weights.items()}
