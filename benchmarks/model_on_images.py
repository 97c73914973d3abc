"""The command line the diagnostics share: a trained DTC model folder (-m, -f, -chk, --device) and a folder of images
in nnU-Net's naming (-i, -n), loaded as nnU-Net's predictor with the model's auxiliary task and head."""
import argparse
from typing import List, NamedTuple

from batchgenerators.utilities.file_and_folder_operations import subfiles
from nnunetv2.utilities.utils import create_paths_fn, get_identifiers_from_splitted_dataset_folder

from nnunetv2_dtc.annotation.rank_unlabeled import DEFAULT_CHECKPOINT, dtc_predictor


def add_model_and_images_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('-m', required=True, help='DTC model folder (the one holding fold_all or fold_X).')
    parser.add_argument('-i', required=True, help='Images, nnU-Net naming (CASE_0000.nii.gz).')
    parser.add_argument('-f', default='all', help='Fold. Default: all.')
    parser.add_argument('-chk', default=DEFAULT_CHECKPOINT, help=f'Default: {DEFAULT_CHECKPOINT}.')
    parser.add_argument('-n', type=int, default=None, help='At most this many cases (sorted by name). Default: all.')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))


class ModelOnImages(NamedTuple):
    predictor: object  # nnUNetPredictor whose label manager counts the auxiliary channels (dtc_predictor)
    task: object  # the model's AuxiliaryTask
    head: object  # its LevelSetHead
    file_ending: str
    cases: List[str]  # case identifiers, sorted, at most -n
    images_folder: str  # -i
    image_files: List[str]  # every file name in it

    def case_files(self, case: str) -> List[str]:
        return create_paths_fn(self.images_folder, self.image_files, self.file_ending, case)


def load_model_on_images(args: argparse.Namespace) -> ModelOnImages:
    """The parsed arguments' model and cases; exits with a message when -i holds no image."""
    predictor, task, head = dtc_predictor(args.m, args.f, args.chk, args.device, tta=False)
    file_ending = predictor.dataset_json['file_ending']
    cases = sorted(get_identifiers_from_splitted_dataset_folder(args.i, file_ending))[:args.n]
    if not cases:
        raise SystemExit(f'No images ending in {file_ending} in {args.i}')
    return ModelOnImages(predictor, task, head, file_ending, cases, args.i,
                         subfiles(args.i, suffix=file_ending, join=False))
