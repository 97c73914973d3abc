"""The error raised for unusable unlabelled data or a stale preprocessed folder, and the command that fixes it."""

PREPROCESS_COMMAND = 'nnUNetv2_dtc_preprocess_unlabeled'


class UnlabeledDataError(ValueError):
    """Input or preprocessed unlabelled data that cannot be used as it is; the message says what to do."""


def preprocess_command(dataset_id: int, configuration: str, plans_identifier: str) -> str:
    return f'{PREPROCESS_COMMAND} -d {dataset_id} -c {configuration} -p {plans_identifier}'
