"""A preprocessed synthetic semi-supervised dataset for the loader benchmark, in the nnU-Net folders set in os.environ
(see nnunet_trainers.temporary_nnunet_folders).

make_synthetic_dataset writes the raw dataset (labelled and unlabelled ellipsoid images). The plans are written
directly (the benchmark's patch size, batch size and network; nnUNetv2_plan_and_preprocess spent minutes planning
on 2 shared cores), the labelled cases go through nnU-Net's own preprocessor (DefaultPreprocessor.run_case_save, as
nnUNetv2_preprocess runs it) and the unlabelled ones through the package's preprocess_unlabeled (what
nnUNetv2_dtc_preprocess_unlabeled runs), both in this process.
"""
import contextlib
import io
import os
import shutil
from typing import Sequence, Tuple

from batchgenerators.utilities.file_and_folder_operations import join, load_json, maybe_mkdir_p, save_json
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets
from synthetic_plans import CONFIGURATION, PLANS_NAME, preprocessing_plans

from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled import preprocess_unlabeled

DATASET_ID = 996
DATASET_NAME = 'DTCLoaderSpeed'
# enough cases that every batch draws from several; as many unlabelled as labelled
NUM_LABELED = 4
NUM_UNLABELED = 4
IN_THIS_PROCESS = 1  # preprocess_unlabeled's num_processes that runs without worker processes


def preprocessed_loader_dataset(training_plans: dict, shape: Sequence[int],
                                num_foreground_labels: int) -> Tuple[dict, dict]:
    """(plans, dataset.json) of the preprocessed dataset; cases of `shape` voxels."""
    raw_folder = make_synthetic_dataset(os.environ['nnUNet_raw'], DATASET_ID, DATASET_NAME, num_labeled=NUM_LABELED,
                                        num_unlabeled=NUM_UNLABELED, num_test=0, shape=tuple(shape),
                                        num_foreground_labels=num_foreground_labels)
    dataset_name = os.path.basename(raw_folder)
    folder = join(os.environ['nnUNet_preprocessed'], dataset_name)
    maybe_mkdir_p(folder)
    plans = preprocessing_plans(dataset_name, training_plans)
    save_json(plans, join(folder, PLANS_NAME + '.json'), sort_keys=False)
    shutil.copyfile(join(raw_folder, 'dataset.json'), join(folder, 'dataset.json'))
    dataset_json = load_json(join(folder, 'dataset.json'))

    plans_manager = PlansManager(plans)
    configuration_manager = plans_manager.get_configuration(CONFIGURATION)
    output_folder = join(folder, configuration_manager.data_identifier)
    maybe_mkdir_p(output_folder)
    preprocessor = configuration_manager.preprocessor_class(verbose=False)
    for case_id, files in get_filenames_of_train_images_and_targets(raw_folder, dataset_json).items():
        preprocessor.run_case_save(join(output_folder, case_id), files['images'], files['label'], plans_manager,
                                   configuration_manager, dataset_json)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        preprocess_unlabeled(DATASET_ID, CONFIGURATION, PLANS_NAME, num_processes=IN_THIS_PROCESS)
    return plans, dataset_json
