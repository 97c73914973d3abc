"""Where a DTC model records its number of level-set channels.

`build_network_architecture` is static and only sees the plans, yet the number of level-set channels depends on
dataset.json (classes vs regions). The DTC trainer records it in the plans it writes beside the model
(plans.json), so that nnU-Net's predictor rebuilds exactly the trained network.
"""
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

LEVEL_SET_CHANNELS_PLANS_KEY = 'dtc_num_level_set_channels'


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
