"""The synthetic sets: the demo's easy one and --compare's, whose labelled ellipsoids cover only small sizes."""
import math

import numpy as np
import SimpleITK as sitk
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.preprocessing.normalization.default_normalization_schemes import CTNormalization, ZScoreNormalization

from nnunetv2_dtc.dataset_conversion.synthetic_dataset import EASY_STYLE, SyntheticStyle, make_synthetic_dataset
from nnunetv2_dtc.demo import COMPARE_STYLE

SHAPE = (24, 24, 24)


def _arrays(folder):
    return [sitk.GetArrayFromImage(sitk.ReadImage(str(f))) for f in sorted(folder.glob('*.nii.gz'))]


def _largest_volume(radius_fraction: float) -> float:
    return 4 / 3 * math.pi * np.prod([radius_fraction * s for s in SHAPE])


def test_compare_style_labels_only_small_ellipsoids_while_test_cases_have_every_size(tmp_path):
    dataset = make_synthetic_dataset(str(tmp_path), 991, 'Compare', num_labeled=6, num_unlabeled=2, num_test=12,
                                     shape=SHAPE, style=COMPARE_STYLE)
    labeled = [int(a.sum()) for a in _arrays(tmp_path / dataset / 'labelsTr')]
    test = [int(a.sum()) for a in _arrays(tmp_path / dataset / 'labelsTs')]
    small_limit = _largest_volume(COMPARE_STYLE.labeled_radius_fraction_range[1])
    assert max(labeled) <= small_limit * 1.1
    assert max(test) > 3 * small_limit and min(test) < small_limit
    images = _arrays(tmp_path / dataset / 'imagesTs')
    labels = _arrays(tmp_path / dataset / 'labelsTs')
    background_std = np.mean([image[label == 0].std() for image, label in zip(images, labels)])
    assert abs(background_std - COMPARE_STYLE.noise_std) < 0.05 * COMPARE_STYLE.noise_std


def test_the_default_style_is_the_easy_one_and_a_style_changes_nothing_but_what_it_names(tmp_path):
    default = make_synthetic_dataset(str(tmp_path / 'a'), 990, num_labeled=2, num_unlabeled=1, num_test=1, shape=SHAPE)
    easy = make_synthetic_dataset(str(tmp_path / 'b'), 990, num_labeled=2, num_unlabeled=1, num_test=1, shape=SHAPE,
                                  style=EASY_STYLE)
    for folder in ('labelsTr', 'imagesTr', 'imagesTs'):
        for x, y in zip(_arrays(tmp_path / 'a' / default / folder), _arrays(tmp_path / 'b' / easy / folder)):
            np.testing.assert_array_equal(x, y)
    noisier = make_synthetic_dataset(str(tmp_path / 'c'), 990, num_labeled=2, num_unlabeled=1, num_test=1,
                                     shape=SHAPE, style=SyntheticStyle(noise_std=1.0))
    for x, y in zip(_arrays(tmp_path / 'a' / default / 'labelsTr'), _arrays(tmp_path / 'c' / noisier / 'labelsTr')):
        np.testing.assert_array_equal(x, y)


def test_compare_style_is_normalised_dataset_wide_so_size_does_not_shift_intensity(tmp_path):
    """With nnU-Net's per-image z-score the largest test ellipsoids would be darker inside than the small labelled
    ones (the image mean rises with the object); the compare set's channel is 'CT', whose normalisation (from the
    labelled foreground's statistics, as nnU-Net's fingerprint takes them) is the same for every case."""
    dataset = tmp_path / make_synthetic_dataset(str(tmp_path), 991, 'Compare', num_labeled=4, num_unlabeled=1,
                                                num_test=12, shape=SHAPE, style=COMPARE_STYLE)
    assert load_json(str(dataset / 'dataset.json'))['channel_names'] == {'0': 'CT'}
    foreground = np.concatenate([image[label > 0] for image, label in
                                 zip(_arrays(dataset / 'imagesTr'), _arrays(dataset / 'labelsTr'))])
    properties = {'mean': foreground.mean(), 'std': foreground.std(),
                  'percentile_00_5': np.percentile(foreground, 0.5), 'percentile_99_5': np.percentile(foreground, 99.5)}
    cases = sorted(zip(_arrays(dataset / 'imagesTs'), _arrays(dataset / 'labelsTs')), key=lambda c: c[1].sum())
    small, large = cases[0], cases[-1]
    assert large[1].sum() > 8 * small[1].sum()

    def inside_mean(normalisation, case):
        image, label = case
        return normalisation.run(image.astype(np.float32), label)[label > 0].mean()

    z_score, dataset_wide = ZScoreNormalization(False, {}), CTNormalization(False, properties)
    assert inside_mean(z_score, small) - inside_mean(z_score, large) > 0.25
    assert abs(inside_mean(dataset_wide, small) - inside_mean(dataset_wide, large)) < 0.1
