"""nnUNetv2_dtc_make_ssl_dataset as a command: the split it writes and its record."""
import json

import pytest

from helpers.nnunet_folders import console_script_command, run_console_script
from helpers.ssl_source import CASE_IDS, NEW_ID, NEW_NAME, NUM_CASES, SOURCE_ID, SOURCE_NAME, file_names
from nnunetv2_dtc.dataset_conversion.make_ssl_dataset import SPLIT_RECORD_FILE_NAME
from nnunetv2_dtc.dataset_conversion.split import SslSplit, draw_split

COMMAND = console_script_command('nnUNetv2_dtc_make_ssl_dataset', 'nnunetv2_dtc.dataset_conversion.make_ssl_dataset')

pytestmark = pytest.mark.slow  # a subprocess of the command


def test_cli_writes_the_split_and_its_record(nnunet_env, source):
    result = run_console_script(nnunet_env, COMMAND, '-d', SOURCE_ID, '-o', NEW_ID, '--labeled_fraction', 0.3,
                                '--test', 3, '--seed', 7)
    new = nnunet_env.raw / NEW_NAME
    assert f'Wrote {new}: 2 labelled, 5 unlabelled and 3 test case(s)' in result.stdout
    assert file_names(nnunet_env.raw) == [SOURCE_NAME, NEW_NAME]  # no temporary folder left

    record = json.loads((new / SPLIT_RECORD_FILE_NAME).read_text())
    # round(0.3 * (10 - 3)) = 2 labelled cases; the CLI draws exactly what the library function draws
    assert SslSplit(record['labeled'], record['unlabeled'], record['test']) == draw_split(CASE_IDS, 2, 3, seed=7)
    assert (record['num_labeled'], record['num_unlabeled'], record['num_test']) == (2, 5, 3)
    assert sorted(record['labeled'] + record['unlabeled'] + record['test']) == CASE_IDS
    assert record['source_dataset'] == SOURCE_NAME and record['seed'] == 7 and record['num_cases'] == NUM_CASES
    assert record['arguments']['labeled_fraction'] == 0.3 and record['arguments']['labeled'] is None
    assert record['files'] == {'hardlink': 0, 'symlink': 0, 'copy': 15}

    assert file_names(new / 'imagesTr') == [f'{c}_0000.nii.gz' for c in record['labeled']]
    assert file_names(new / 'labelsTr') == [f'{c}.nii.gz' for c in record['labeled']]
    assert file_names(new / 'imagesUnlabeled') == [f'{c}_0000.nii.gz' for c in record['unlabeled']]
    assert file_names(new / 'imagesTs') == [f'{c}_0000.nii.gz' for c in record['test']]
    assert file_names(new / 'labelsTs') == [f'{c}.nii.gz' for c in record['test']]
    test_case = record['test'][0]
    assert (new / 'labelsTs' / f'{test_case}.nii.gz').read_bytes() == \
        (source / 'labelsTr' / f'{test_case}.nii.gz').read_bytes()
    assert not (new / 'imagesTs' / f'{test_case}_0000.nii.gz').is_symlink()

    source_json = json.loads((source / 'dataset.json').read_text())
    assert json.loads((new / 'dataset.json').read_text()) == {**source_json, 'numTraining': 2}
