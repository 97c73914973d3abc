"""How far does a perturbed input move a DTC model's level-set view (issue #14, hypotheses 14 and 15)?

A consistency term draws on an unlabelled image only where its two views disagree. _NoisyEMATeacher and
_MirroredEMATeacher give their teacher a perturbed copy of each unlabelled patch (clipped Gaussian noise; a mirror
image, mirrored back), so that the student has to answer the same for a slightly different input. If the model already
answers a perturbed copy as it answers the image itself, that teacher adds nothing over the unperturbed one. This
predicts each image once as it is and once per perturbation (nnU-Net's predictor, no test-time mirroring), and prints
per perturbation, as mean over cases (10th-90th percentile):

- view change: mean |perturbed level-set view - clean one| over the voxels where either calls a class foreground
  (disagreement.py's definition, per class, then averaged over classes);
- segmentation change: the same for the segmentation probabilities (how far the model is from answering alike);
- consistency: mean((perturbed level-set view - clean segmentation probability)^2) over the image, the term the
  teacher's view gives the student, and its ratio to the clean level-set view's.

    python benchmarks/teacher_view_perturbation.py -m MODEL_FOLDER -i IMAGES [-f all] [-n 20]

Use images the model did not train on, e.g. the dataset's imagesUnlabeled.
"""
import argparse
import itertools
from typing import Callable, Dict, List, NamedTuple, Sequence

import numpy as np
import torch
from tqdm import tqdm

from model_on_images import add_model_and_images_arguments, load_model_on_images
from nnunetv2_dtc.annotation.disagreement import disagreement_scores, disagreement_views
from nnunetv2_dtc.ema_teacher import DEFAULT_TEACHER_INPUT_NOISE_CLIP, DEFAULT_TEACHER_INPUT_NOISE_STD, \
    with_clipped_gaussian_noise

MEASURES = ('view change', 'segmentation change', 'consistency', 'consistency ratio')
NOISE_SEED = 0  # the noise draws, so that a rerun prints the same figures


class Perturbation(NamedTuple):
    name: str
    perturb: Callable[[torch.Tensor], torch.Tensor]  # of a case's data (channels, *spatial)
    restore: Callable[[torch.Tensor], torch.Tensor]  # of the logits of the perturbed data, back to the image's frame


def perturbations(mirror_axes: Sequence[int], num_spatial_dims: int) -> List[Perturbation]:
    """The noisy teacher's input noise, and a mirror along each non-empty subset of the model's mirror axes (of its
    patch, num_spatial_dims axes: the last ones of a case's data, which for a 2D configuration is a stack of
    slices)."""
    result = [Perturbation(f'noise (std {DEFAULT_TEACHER_INPUT_NOISE_STD}, clip {DEFAULT_TEACHER_INPUT_NOISE_CLIP})',
                           lambda data: with_clipped_gaussian_noise(data, DEFAULT_TEACHER_INPUT_NOISE_STD,
                                                                    DEFAULT_TEACHER_INPUT_NOISE_CLIP),
                           lambda logits: logits)]
    for size in range(1, len(mirror_axes) + 1):
        for axes in itertools.combinations(mirror_axes, size):
            dims = tuple(axis - num_spatial_dims for axis in axes)
            result.append(Perturbation(f'mirror {axes}', lambda x, dims=dims: torch.flip(x, dims),
                                       lambda x, dims=dims: torch.flip(x, dims)))
    return result


def case_measures(predict: Callable[[torch.Tensor], torch.Tensor], task, num_segmentation: int, has_regions: bool,
                  data: torch.Tensor, perturbation_list: List[Perturbation]) -> Dict[str, Dict[str, float]]:
    """{perturbation name: {measure: value}} of one case; `predict` maps data to logits (channels, *spatial)."""
    def views(logits):
        return disagreement_views(task, logits[num_segmentation:], logits[:num_segmentation], has_regions)

    clean_view, clean_segmentation = views(predict(data).float())
    clean_consistency = float(((clean_view - clean_segmentation) ** 2).mean())
    result = {}
    for perturbation in perturbation_list:
        view, segmentation = views(perturbation.restore(predict(perturbation.perturb(data)).float()))
        consistency = float(((view - clean_segmentation) ** 2).mean())
        result[perturbation.name] = {
            'view change': disagreement_scores(view, clean_view)[0],
            'segmentation change': disagreement_scores(segmentation, clean_segmentation)[0],
            'consistency': consistency,
            'consistency ratio': consistency / clean_consistency if clean_consistency > 0 else float('nan')}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_model_and_images_arguments(parser)
    args = parser.parse_args()

    model = load_model_on_images(args)
    predictor = model.predictor
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    perturbation_list = perturbations(predictor.allowed_mirroring_axes or (),
                                      len(predictor.configuration_manager.patch_size))
    torch.manual_seed(NOISE_SEED)
    totals = {p.name: {measure: [] for measure in MEASURES} for p in perturbation_list}
    for case in tqdm(model.cases, desc='Predicting clean and perturbed copies'):
        data, _, _ = preprocessor.run_case(model.case_files(case), None, predictor.plans_manager,
                                           predictor.configuration_manager, predictor.dataset_json)
        measures = case_measures(predictor.predict_logits_from_preprocessed_data, model.task,
                                 model.head.num_segmentation_channels, predictor.label_manager.has_regions,
                                 torch.from_numpy(data), perturbation_list)
        for name, values in measures.items():
            for measure, value in values.items():
                totals[name][measure].append(value)
    print(f'{args.m}: {len(model.cases)} case(s); mean over cases (10th-90th percentile)')
    for name, values in totals.items():
        print(f'  {name:>28}: ' + ', '.join(
            f'{measure} {np.nanmean(v):.4f} ({np.nanpercentile(v, 10):.4f}-{np.nanpercentile(v, 90):.4f})'
            for measure, v in values.items()))


if __name__ == '__main__':
    main()
