from typing import List, Optional

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import distributed as dist
from torch import nn

from nnunetv2_dtc.dataloading.batch import dtc_targets
from nnunetv2_dtc.dataloading.mixed_loader import LabeledUnlabeledDataLoader, split_global_batch_size
from nnunetv2_dtc.auxiliary_tasks.base import AuxiliaryTask
from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTask
from nnunetv2_dtc.dataloading.transforms import AuxiliaryTargetTransform, unlabeled_training_transforms, \
    with_sdf_targets
from nnunetv2_dtc.dataloading.unlabeled_loader import UnlabeledPatchLoader
from nnunetv2_dtc.gradient_norms import GRADIENT_NORM_LOG_KEYS
from nnunetv2_dtc.hyperparameters import check_dtc_hyperparameters
from nnunetv2_dtc.level_set_head import add_level_set_head, get_level_set_head, num_level_set_channels_from_plans, \
    record_level_set_channels
from nnunetv2_dtc.loss import DEFAULT_LEVEL_SET_SHARPNESS, DEFAULT_MAX_CONSISTENCY_WEIGHT, DEFAULT_SDF_LOSS_WEIGHT, \
    LOSS_TERMS, DTCLoss, sigmoid_rampup_weight
from nnunetv2_dtc.progress import DTC_LOG_KEYS, plot_dtc_progress, register_dtc_log_keys
from nnunetv2_dtc.unlabeled_handling.verify import verify_unlabeled_folder

# sha256 of inspect.getsource(nnUNetTrainer.get_dataloaders) in nnunetv2 2.8.1, the version get_dataloaders below
# restates; a unit test fails when nnU-Net's method changes, so that the restatement is updated with it
NNUNET_GET_DATALOADERS_SHA256 = '5f59e2b907cfa2d1eb1e77ab2a5b8893161e7af8567fc5669c62a4810334899e'


class nnUNetTrainerDTC(nnUNetTrainer):
    """Dual-Task Consistency (Luo et al., AAAI 2021) semi-supervised training on top of nnU-Net.

    The network gets a tanh level-set output per foreground class or region; each batch holds nnU-Net's labelled
    patches followed by unlabelled ones; the loss is nnU-Net's on the labelled patches, plus `sdf_loss_weight` *
    MSE(level set, SDF target) on the labelled ones, plus lambda(t) * consistency on all of them. Change the
    hyperparameters below in a subclass."""

    sdf_loss_weight: float = DEFAULT_SDF_LOSS_WEIGHT
    level_set_sharpness: float = DEFAULT_LEVEL_SET_SHARPNESS
    max_consistency_weight: float = DEFAULT_MAX_CONSISTENCY_WEIGHT
    # lambda(t) ramps up over this fraction of all training iterations (DTC: the whole run)
    consistency_rampup_fraction: float = 1.0
    # unlabelled patches per batch across all ranks; None: unlabeled_patches_per_labeled times the labelled ones
    unlabeled_batch_size: Optional[int] = None
    unlabeled_patches_per_labeled: int = 1  # DTC used 2 + 2
    # False gives the ablation "DTC losses on the labelled patches only"
    use_unlabeled_data: bool = True
    # True leaves the classes absent from a labelled patch out of the SDF loss (DTC: their all-zero SDF counts)
    mask_absent_classes_in_sdf_loss: bool = False
    # DTC's SDF target is 0 on the inner boundary; False keeps its -1 / max inside distance there (sdf.py)
    sdf_zero_inner_boundary: bool = True
    # True weighs each class's inside and outside voxels equally in the SDF loss (DTC: plain MSE over all voxels)
    sdf_loss_class_balanced: bool = False
    # the loss; its subclasses change where the consistency applies (e.g. MultiScaleConsistencyDTCLoss)
    dtc_loss_class: type = DTCLoss
    # gradient norm of each weighted loss term, measured on the first training step of every epoch (gradient_norms.py)
    log_gradient_norms: bool = True

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        lm = self.label_manager
        self.num_level_set_channels = len(lm.foreground_regions if lm.has_regions else lm.foreground_labels)
        record_level_set_channels(self.plans_manager.plans, self.num_level_set_channels)
        register_dtc_log_keys(self.logger)
        self.iteration_in_epoch = 0
        self.epoch_gradient_norms = {}

    @staticmethod
    def build_network_architecture(plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        network = nnUNetTrainer.build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                           num_output_channels, enable_deep_supervision)
        add_level_set_head(network, num_level_set_channels_from_plans(plans_manager))
        get_level_set_head(network).emit_level_set = enable_deep_supervision
        return network

    def initialize(self):
        check_dtc_hyperparameters(self)
        if self.is_cascaded:
            raise RuntimeError(f'{self.__class__.__name__} does not support cascaded configurations '
                               f'({self.configuration_name}): unlabelled cases have no previous-stage segmentation. '
                               f'Train 3d_fullres, 3d_lowres or 2d instead.')
        super().initialize()

    @classmethod
    def build_auxiliary_task(cls) -> AuxiliaryTask:
        """DTC's second task: the level set (LevelSetTask). Override it to train another (auxiliary_tasks/base.py);
        its channels, loss and consistency then replace the level set's everywhere. A class method, like
        build_network_architecture is static: nnUNetv2_dtc_rank_unlabeled gets a model's task from its trainer
        class alone."""
        return LevelSetTask(cls.level_set_sharpness, cls.sdf_zero_inner_boundary, cls.sdf_loss_class_balanced)

    def _build_loss(self):
        lm = self.label_manager
        return self.dtc_loss_class(super()._build_loss(), lm.num_segmentation_heads, lm.has_regions, lm.ignore_label,
                                   self.sdf_loss_weight, mask_absent_classes=self.mask_absent_classes_in_sdf_loss,
                                   task=self.build_auxiliary_task())

    def consistency_weight_at(self, iteration: int) -> float:
        rampup_iterations = self.consistency_rampup_fraction * self.num_epochs * self.num_iterations_per_epoch
        return sigmoid_rampup_weight(iteration, rampup_iterations, self.max_consistency_weight)

    def _unlabeled_batch_size_here(self) -> int:
        if self.unlabeled_batch_size is None:
            return self.unlabeled_patches_per_labeled * self.batch_size
        if self.is_ddp:
            return split_global_batch_size(self.unlabeled_batch_size, dist.get_world_size(), dist.get_rank())
        return self.unlabeled_batch_size

    def _unlabeled_loader(self, initial_patch_size, transforms: ComposeTransforms) -> Optional[UnlabeledPatchLoader]:
        if not self.use_unlabeled_data:
            return None
        folder, identifiers = verify_unlabeled_folder(self.plans_manager.dataset_name, self.plans_manager,
                                                      self.configuration_name, self.dataset_json)
        batch_size = self._unlabeled_batch_size_here()
        if batch_size == 0:
            return None
        dataset = infer_dataset_class(folder)(folder, identifiers)
        return UnlabeledPatchLoader(dataset, batch_size, initial_patch_size, self.configuration_manager.patch_size,
                                    self.label_manager, transforms)

    def _dtc_training_loader(self, dataset_tr, initial_patch_size,
                             tr_transforms: ComposeTransforms) -> LabeledUnlabeledDataLoader:
        """nnU-Net's training loader with SDF targets appended to its transforms, followed by unlabelled patches with
        the same augmentation (image only)."""
        lm = self.label_manager
        sdf_transform = AuxiliaryTargetTransform(self.loss.task,
                                                 lm.foreground_regions if lm.has_regions else lm.foreground_labels)
        unlabeled = self._unlabeled_loader(initial_patch_size, unlabeled_training_transforms(tr_transforms))
        labeled = nnUNetDataLoader(dataset_tr, self.batch_size,
                                   initial_patch_size,
                                   self.configuration_manager.patch_size,
                                   self.label_manager,
                                   oversample_foreground_percent=self.oversample_foreground_percent,
                                   sampling_probabilities=None, pad_sides=None,
                                   transforms=with_sdf_targets(tr_transforms, sdf_transform),
                                   probabilistic_oversampling=self.probabilistic_oversampling)
        self.print_to_log_file(f'DTC batches: {labeled.batch_size} labelled + '
                               f'{0 if unlabeled is None else unlabeled.batch_size} unlabelled patches')
        return LabeledUnlabeledDataLoader(labeled, unlabeled)

    def get_dataloaders(self):
        """nnUNetTrainer.get_dataloaders (nnunetv2 2.8.1) in its own order and names, without its comments: it builds
        nnU-Net's training loader and starts the augmenters in one go, so DTC's loader needs this restatement. The
        one changed line is marked `# DTC`; a unit test compares the rest with nnU-Net's method statement by
        statement."""
        if self.dataset_class is None:
            self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)

        patch_size = self.configuration_manager.patch_size

        deep_supervision_scales = self._get_deep_supervision_scales()

        (
            rotation_for_DA,
            do_dummy_2d_data_aug,
            initial_patch_size,
            mirror_axes,
        ) = self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()

        tr_transforms = self.get_training_transforms(
            patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm,
            is_cascaded=self.is_cascaded, foreground_labels=self.label_manager.foreground_labels,
            regions=self.label_manager.foreground_regions if self.label_manager.has_regions else None,
            ignore_label=self.label_manager.ignore_label)

        val_transforms = self.get_validation_transforms(deep_supervision_scales,
                                                        is_cascaded=self.is_cascaded,
                                                        foreground_labels=self.label_manager.foreground_labels,
                                                        regions=self.label_manager.foreground_regions if
                                                        self.label_manager.has_regions else None,
                                                        ignore_label=self.label_manager.ignore_label)

        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        dl_tr = self._dtc_training_loader(dataset_tr, initial_patch_size, tr_transforms)  # DTC
        dl_val = nnUNetDataLoader(dataset_val, self.batch_size,
                                  self.configuration_manager.patch_size,
                                  self.configuration_manager.patch_size,
                                  self.label_manager,
                                  oversample_foreground_percent=self.oversample_foreground_percent,
                                  sampling_probabilities=None, pad_sides=None, transforms=val_transforms,
                                  probabilistic_oversampling=self.probabilistic_oversampling)

        allowed_num_processes = get_allowed_n_proc_DA()
        if allowed_num_processes == 0:
            mt_gen_train = SingleThreadedAugmenter(dl_tr, None)
            mt_gen_val = SingleThreadedAugmenter(dl_val, None)
        else:
            mt_gen_train = NonDetMultiThreadedAugmenter(data_loader=dl_tr, transform=None,
                                                        num_processes=allowed_num_processes,
                                                        num_cached=max(6, allowed_num_processes // 2), seeds=None,
                                                        pin_memory=self.device.type == 'cuda', wait_time=0.002)
            mt_gen_val = NonDetMultiThreadedAugmenter(data_loader=dl_val,
                                                      transform=None, num_processes=max(1, allowed_num_processes // 2),
                                                      num_cached=max(3, allowed_num_processes // 4), seeds=None,
                                                      pin_memory=self.device.type == 'cuda',
                                                      wait_time=0.002)
        _ = next(mt_gen_train)
        _ = next(mt_gen_val)
        return mt_gen_train, mt_gen_val

    def on_train_start(self):
        super().on_train_start()
        get_level_set_head(self._unwrapped_network()).emit_level_set = True
        reason = self._gradient_norms_unavailable_because()
        if self.log_gradient_norms and reason is not None:
            self.print_to_log_file(f'DTC gradient norms are not measured with {reason} (logged as NaN)')

    def _unwrapped_network(self) -> nn.Module:
        network = self.network.module if self.is_ddp else self.network
        return getattr(network, '_orig_mod', network)

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self.iteration_in_epoch = 0
        self.epoch_gradient_norms = {}

    def train_step(self, batch: dict) -> dict:
        iteration = self.current_epoch * self.num_iterations_per_epoch + self.iteration_in_epoch
        measure = self.iteration_in_epoch == 0 and self._can_measure_gradient_norms()
        self.iteration_in_epoch += 1
        self.loss.consistency_weight = self.consistency_weight_at(iteration)
        if measure:
            self.loss.measure_gradients_of = [p for p in self.network.parameters() if p.requires_grad]
        result = super().train_step({**batch, 'target': dtc_targets(batch, self.enable_deep_supervision)})
        terms = torch.stack([self.loss.last_terms[k] for k in LOSS_TERMS]).float().cpu().numpy()
        result.update(dict(zip(LOSS_TERMS, terms)))
        result['consistency_weight'] = np.float32(self.loss.consistency_weight)
        if measure:
            self.epoch_gradient_norms = dict(self.loss.last_gradient_norms)
        self._stop_if_not_finite(result)
        return result

    def _can_measure_gradient_norms(self) -> bool:
        return self.log_gradient_norms and self._gradient_norms_unavailable_because() is None

    def _gradient_norms_unavailable_because(self) -> Optional[str]:
        """Not under DDP (each rank would measure its own shard's gradient) nor with torch.compile (not tested with
        the extra backward passes)."""
        return 'DDP' if self.is_ddp else 'torch.compile' if hasattr(self.network, '_orig_mod') else None

    def _stop_if_not_finite(self, step_result: dict) -> None:
        bad = [k for k in ('loss', *LOSS_TERMS) if not np.all(np.isfinite(step_result[k]))]
        if bad:
            raise FloatingPointError(
                f'Non-finite DTC loss at epoch {self.current_epoch}, step {self.iteration_in_epoch - 1}: '
                f'{", ".join(bad)} = {[float(step_result[k]) for k in bad]}. Training stopped; the last checkpoint '
                f'written (checkpoint_latest.pth / checkpoint_best.pth in {self.output_folder}) is untouched. '
                f'Lower the learning rate or the loss weights and resume with --c.')

    def on_train_epoch_end(self, train_outputs: List[dict]):
        super().on_train_epoch_end(train_outputs)
        outputs = collate_outputs(train_outputs)
        for name, key in DTC_LOG_KEYS.items():
            self.logger.log(key, self._mean_over_ranks(outputs[name]), self.current_epoch)
        names = {'sdf_loss': self.loss.task.loss_name}
        self.print_to_log_file(', '.join(f'{names.get(name, name)} '
                                         f'{np.round(self.logger.get_value(key, step=-1), decimals=4)}'
                                         for name, key in DTC_LOG_KEYS.items()))
        for name, key in GRADIENT_NORM_LOG_KEYS.items():
            self.logger.log(key, self.epoch_gradient_norms.get(name, float('nan')), self.current_epoch)
        if self.epoch_gradient_norms:
            self.print_to_log_file('gradient norms (weighted terms, first step): ' + ', '.join(
                f'{name} {value:.3g}' for name, value in self.epoch_gradient_norms.items()))

    def _mean_over_ranks(self, values) -> float:
        if not self.is_ddp:
            return float(np.mean(values))
        gathered = [None for _ in range(dist.get_world_size())]
        dist.all_gather_object(gathered, values)
        return float(np.mean(np.concatenate([np.atleast_1d(v) for v in gathered])))

    def on_epoch_end(self):
        super().on_epoch_end()
        if self.local_rank == 0:
            plot_dtc_progress(self.logger, self.output_folder, f'{self.__class__.__name__}: '
                              f'{self.plans_manager.dataset_name}, {self.configuration_name}, fold {self.fold}',
                              self.loss.task.loss_name)
