"""The DTC network: nnU-Net's network plus a level-set output that leaves eval mode exactly vanilla."""
import os

import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from helpers.tiny_plans import tiny_plans_manager
from nnunetv2_dtc.level_set_head import SegmentationAndLevelSetHead, split_segmentation_and_level_set, \
    vanilla_state_dict
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

NUM_SEGMENTATION_CHANNELS = 3  # background + 2 classes


def _networks(dimension: int, residual: bool, deep_supervision: bool):
    pm = tiny_plans_manager(dimension=dimension, residual=residual, num_level_set_channels=2)
    cm = pm.get_configuration('tiny')
    torch.manual_seed(0)
    dtc = nnUNetTrainerDTC.build_network_architecture(pm, cm, 1, NUM_SEGMENTATION_CHANNELS, deep_supervision)
    vanilla = nnUNetTrainer.build_network_architecture(pm, cm, 1, NUM_SEGMENTATION_CHANNELS, deep_supervision)
    vanilla_state = {k.replace('seg_layers.1.', 'seg_layers.1.conv.'): v for k, v in vanilla.state_dict().items()}
    # vanilla's weights for everything; the level-set rows keep their own initialisation
    state = dtc.state_dict()
    for k, v in vanilla_state.items():
        state[k][:v.shape[0]] = v
    dtc.load_state_dict(state)
    return dtc, vanilla


@pytest.mark.parametrize('dimension,residual', [(3, False), (2, False), (3, True)])
def test_eval_mode_returns_exactly_vanilla(dimension, residual):
    dtc, vanilla = _networks(dimension, residual, deep_supervision=True)
    x = torch.randn(2, 1, *([16] * dimension))
    dtc.eval(), vanilla.eval()
    with torch.no_grad():
        dtc_out, vanilla_out = dtc(x), vanilla(x)
    assert len(dtc_out) == len(vanilla_out)
    for a, b in zip(dtc_out, vanilla_out):
        assert a.shape == b.shape
        assert torch.equal(a, b)


def test_built_without_deep_supervision_is_vanilla_even_in_train_mode():
    dtc, vanilla = _networks(3, False, deep_supervision=False)
    x = torch.randn(2, 1, 16, 16, 16)
    dtc.train(), vanilla.train()
    out = dtc(x)
    assert out.shape == (2, NUM_SEGMENTATION_CHANNELS, 16, 16, 16)
    assert torch.allclose(out, vanilla(x), atol=1e-6)


def test_training_output_has_level_set_channels_sharing_features():
    dtc, vanilla = _networks(3, False, deep_supervision=True)
    x = torch.randn(2, 1, 16, 16, 16)
    dtc.train(), vanilla.train()
    out = dtc(x)
    assert out[0].shape == (2, NUM_SEGMENTATION_CHANNELS + 2, 16, 16, 16)
    assert out[1].shape == (2, NUM_SEGMENTATION_CHANNELS, 8, 8, 8)
    seg, level_set = split_segmentation_and_level_set(out[0], NUM_SEGMENTATION_CHANNELS)
    assert torch.allclose(seg, vanilla(x)[0], atol=1e-5)
    assert level_set.min() > -1 and level_set.max() < 1
    head = dtc.decoder.seg_layers[-1]
    assert isinstance(head, SegmentationAndLevelSetHead)
    # one 1x1 convolution for both tasks: the level set is computed from the same last decoder features
    assert head.conv.weight.shape[:2] == (NUM_SEGMENTATION_CHANNELS + 2, vanilla.decoder.seg_layers[-1].in_channels)


def test_state_dict_loads_strictly_into_a_network_built_for_inference():
    dtc, _ = _networks(3, False, deep_supervision=True)
    pm = tiny_plans_manager(num_level_set_channels=2)
    for_inference = nnUNetTrainerDTC.build_network_architecture(pm, pm.get_configuration('tiny'), 1,
                                                                NUM_SEGMENTATION_CHANNELS, False)
    for_inference.load_state_dict(dtc.state_dict(), strict=True)


def test_split_refuses_output_without_level_set():
    with pytest.raises(RuntimeError, match='no level-set channels'):
        split_segmentation_and_level_set(torch.zeros(1, 3, 4, 4), 3)


@pytest.mark.skipif(os.environ.get('DTC_TEST_COMPILE') != '1',
                    reason='torch.compile takes minutes on a 2-core CPU; set DTC_TEST_COMPILE=1 to run it')
def test_compiled_network_trains_with_level_set_and_predicts_vanilla_output():
    dtc, vanilla = _networks(3, False, deep_supervision=True)
    compiled = torch.compile(dtc)
    x = torch.randn(2, 1, 16, 16, 16)
    compiled.train()
    out = compiled(x)
    assert out[0].shape[1] == NUM_SEGMENTATION_CHANNELS + 2
    out[0].sum().backward()
    compiled.eval(), vanilla.eval()
    with torch.no_grad():
        assert torch.allclose(compiled(x)[0], vanilla(x)[0], atol=1e-5)


@pytest.mark.parametrize('dimension,residual', [(3, False), (2, False), (3, True)])
def test_vanilla_state_dict_loads_strictly_into_vanilla_and_predicts_the_same(dimension, residual):
    pm = tiny_plans_manager(dimension=dimension, residual=residual, num_level_set_channels=2)
    cm = pm.get_configuration('tiny')
    torch.manual_seed(0)
    dtc = nnUNetTrainerDTC.build_network_architecture(pm, cm, 1, NUM_SEGMENTATION_CHANNELS, False)
    vanilla = nnUNetTrainer.build_network_architecture(pm, cm, 1, NUM_SEGMENTATION_CHANNELS, False)
    vanilla.load_state_dict(vanilla_state_dict(dtc.state_dict(), NUM_SEGMENTATION_CHANNELS))
    x = torch.randn(2, 1, *([16] * dimension))
    dtc.eval(), vanilla.eval()
    with torch.no_grad():
        assert torch.equal(dtc(x), vanilla(x))


def test_vanilla_state_dict_refuses_weights_without_a_level_set_head():
    pm = tiny_plans_manager()
    vanilla = nnUNetTrainer.build_network_architecture(pm, pm.get_configuration('tiny'), 1, 3, False)
    with pytest.raises(ValueError, match='no DTC level-set head'):
        vanilla_state_dict(vanilla.state_dict(), NUM_SEGMENTATION_CHANNELS)
