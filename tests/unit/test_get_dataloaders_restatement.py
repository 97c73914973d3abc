"""nnUNetTrainerDTC.get_dataloaders restates nnUNetTrainer.get_dataloaders (its base builds nnU-Net's loader and starts
the augmenters in one go): it must stay nnU-Net's method but for the one line marked `# DTC`, and an nnU-Net upgrade
that changes the base method must be noticed."""
import ast
import hashlib
import inspect
import textwrap

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunetv2_dtc.trainers.nnUNetTrainerDTC import NNUNET_GET_DATALOADERS_SHA256, nnUNetTrainerDTC

DTC_STATEMENT = 'dl_tr'  # the one statement that differs: the training loader


def _statements(method) -> list:
    function = ast.parse(textwrap.dedent(inspect.getsource(method))).body[0]
    body = function.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body


def _assigns(statement: ast.stmt, name: str) -> bool:
    return isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                     for t in statement.targets)


def test_nnunets_get_dataloaders_is_the_version_the_restatement_was_written_against():
    source = inspect.getsource(nnUNetTrainer.get_dataloaders)
    assert hashlib.sha256(source.encode()).hexdigest() == NNUNET_GET_DATALOADERS_SHA256, (
        'nnUNetTrainer.get_dataloaders changed in this nnU-Net version. Compare it with '
        'nnUNetTrainerDTC.get_dataloaders (trainers/nnUNetTrainerDTC.py), carry the change over, and update '
        'NNUNET_GET_DATALOADERS_SHA256 there.')


def test_the_restatement_equals_nnunets_method_but_for_the_training_loader():
    ours, base = _statements(nnUNetTrainerDTC.get_dataloaders), _statements(nnUNetTrainer.get_dataloaders)
    assert len(ours) == len(base), 'nnUNetTrainerDTC.get_dataloaders has other statements than nnU-Net\'s method'
    differing = []
    for mine, theirs in zip(ours, base):
        if _assigns(mine, DTC_STATEMENT) and _assigns(theirs, DTC_STATEMENT):
            assert '_dtc_training_loader' in ast.dump(mine.value)
            continue
        if ast.dump(mine) != ast.dump(theirs):
            differing.append(ast.unparse(mine))
    assert not differing, f'statements that differ from nnUNetTrainer.get_dataloaders: {differing}'


def test_the_changed_line_is_marked():
    lines = [line for line in inspect.getsource(nnUNetTrainerDTC.get_dataloaders).splitlines()
             if line.strip().startswith(f'{DTC_STATEMENT} =')]
    assert len(lines) == 1 and lines[0].rstrip().endswith('# DTC')
