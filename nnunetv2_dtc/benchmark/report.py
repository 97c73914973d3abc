"""benchmark.md: the tables a user pastes into a paper, from the rows of comparison.py (the same numbers as
benchmark.json), one table as predicted and a separate one with largest-connected-component post-processing."""
from typing import List, Optional

from nnunetv2_dtc.benchmark.comparison import SEED_SUMMARY, TABLE_METRICS
from nnunetv2_dtc.benchmark.metrics import DICE, HD95_MM, LARGEST_COMPONENT, NO_POSTPROCESSING
from nnunetv2_dtc.benchmark.settings import METHODS, VANILLA_TRAINER
from nnunetv2_dtc.benchmark.statistics import DISTANCE_RELATIVE_TIE_TOLERANCE

METRIC_HEADERS = {'Dice': 'Dice', 'IoU': 'IoU', 'HD95_mm': 'HD95 (mm)', 'ASD_mm': 'ASD (mm)'}
# decimals shown: overlap scores in [0, 1], distances in mm, seconds per epoch
DECIMALS = {'Dice': 4, 'IoU': 4, 'HD95_mm': 2, 'ASD_mm': 2}
TIME_DECIMALS = 2
P_VALUE_DECIMALS = 4
MISSING = '–'
TABLE_TITLES = {NO_POSTPROCESSING: 'Test set, as predicted',
                LARGEST_COMPONENT: 'Test set, largest connected component per class (post-processed)'}
CONTRIBUTION_EXPLANATION = ('The headline figure: both train DTC\'s network and losses on the same labelled cases, '
                            'seed and schedule; only DTC also sees the unlabelled images. One table per DTC method '
                            'that ran with its ablation; the last column is the DTC method\'s own share of the gap to '
                            'the upper bound. Differences: mean ± std over the test cases of DTC − ablation (per '
                            'seed), and mean ± std over seeds of the per-seed mean differences in the summary row, '
                            'whose p and W/L/T pair the per-case values averaged over seeds. A gain smaller than the '
                            'seed-to-seed spread is no evidence that the unlabelled images count.')
DISAGREEMENT_EXPLANATION = ('`nnUNetv2_dtc_rank_unlabeled` scored each held-out test case by the model\'s dual-task '
                            'disagreement (mean |task view − segmentation view| where either calls foreground); '
                            'Spearman\'s rho with the case\'s Dice error (1 − foreground Dice) says whether the score '
                            'ranks cases by how wrong the model is (rho > 0: a useful annotation priority). Scores '
                            'per case: `rankings/<run>/annotation_priority.csv`.')
GAP_EXPLANATION = ('(method − nnU-Net) / (upper bound − nnU-Net) of the test means, with nnU-Net and the upper bound '
                   'of the same seed: 0 % is vanilla nnU-Net, 100 % the upper bound (nnU-Net trained with the true '
                   'labels of the unlabelled images too). Seed summaries: mean ± std over seeds. For HD95 and ASD '
                   'the same formula (lower is better on both sides).')
OVERLAY_EXPLANATION = ('Per seed, the test cases where DTC gains most over nnU-Net (per-case foreground Dice), the '
                       'median case and where it loses most (a run alone in its seed: its highest, median and lowest '
                       'Dice), at the slice with the largest reference area: the image in grey, the reference and '
                       'each method\'s prediction as contours, one colour per class.')
MAIN_COLUMNS = ['Method', 'Seed', *METRIC_HEADERS.values(), 'p (Dice) vs nnU-Net', 'W/L/T (Dice)', 'Time/epoch (s)',
                'Parameters']


def mean_std(summary: dict, decimals: int, n_cases: Optional[int] = None) -> str:
    """'mean ± std', with '(n=K)' when only K of the n_cases had a value."""
    if summary['mean'] is None:
        return MISSING
    text = f'{summary["mean"]:.{decimals}f} ± {summary["std"]:.{decimals}f}'
    return text + (f' (n={summary["n"]})' if n_cases is not None and summary['n'] < n_cases else '')


def p_value(value: Optional[float]) -> str:
    if value is None:
        return MISSING
    smallest = 10 ** -P_VALUE_DECIMALS
    return f'<{smallest:.{P_VALUE_DECIMALS}f}' if value < smallest else f'{value:.{P_VALUE_DECIMALS}f}'


def markdown_table(columns: List[str], rows: List[List[str]]) -> List[str]:
    """The lines of a markdown table."""
    return ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns),
            *['| ' + ' | '.join(row) + ' |' for row in rows]]


def _counted_cases(row: dict) -> Optional[int]:
    """What a row's '(n=K)' counts: test cases in a per-seed row, seeds in a seed summary (a seed whose test mean is
    undefined, e.g. HD95 with an empty class in every case, is left out of the summary and must show)."""
    return row['n_cases'] if 'seeds' not in row else len(row['seeds'])


def main_table(rows: List[dict]) -> List[str]:
    cells = []
    for row in rows:
        dice = (row['vs_vanilla'] or {}).get(DICE)
        time = row['time_per_epoch_s']
        cells.append([row['method_name'], str(row['seed']),
                      *[mean_std(row['metrics'][m], DECIMALS[m], _counted_cases(row)) for m in TABLE_METRICS],
                      p_value(dice['p_value']) if dice else MISSING,
                      f'{dice["wins"]}/{dice["losses"]}/{dice["ties"]}' if dice else MISSING,
                      mean_std(time, TIME_DECIMALS), f'{row["parameters"]:,}'])
    return markdown_table(MAIN_COLUMNS, cells)


def difference_table(rows: List[dict]) -> List[str]:
    cells = []
    for row in rows:
        for metric in TABLE_METRICS:
            if row['vs_vanilla'] is None:
                continue
            c = row['vs_vanilla'][metric]
            cells.append([row['method_name'], str(row['seed']), METRIC_HEADERS[metric],
                          mean_std(c['difference'], DECIMALS[metric]), p_value(c['p_value']),
                          f'{c["wins"]}/{c["losses"]}/{c["ties"]}', str(c['n_paired'])])
    return markdown_table(['Method', 'Seed', 'Metric', 'Difference (method − nnU-Net)', 'p', 'W/L/T',
                           'Paired cases'], cells)


def contribution_table(contribution: dict, dtc_gap_rows: List[dict]) -> List[str]:
    """Seed rows and the summary: Dice and HD95 differences with p and W/L/T, and DTC's share of the gap closed."""
    gaps = {row['seed']: row['gap_closed'] for row in dtc_gap_rows}
    cells = []
    for row in contribution['per_seed']:
        gap = gaps.get(row['seed'])
        cells.append([str(row['seed']), *[cell for m in (DICE, HD95_MM) for cell in contribution_cells(row[m], m)],
                      MISSING if not gap or gap[DICE] is None else percent(gap[DICE])])
    if len(contribution['per_seed']) > 1:
        over = contribution['over_seeds']
        gap = gaps.get(SEED_SUMMARY)
        cells.append([SEED_SUMMARY, *[cell for m in (DICE, HD95_MM) for cell in contribution_cells(
            {**over[m]['seed_averaged'], 'difference': over[m]['difference']}, m)],
            MISSING if not gap or gap[DICE]['mean'] is None else
            f'{percent(gap[DICE]["mean"])[:-2]} ± {percent(gap[DICE]["std"])}'])
    return markdown_table(['Seed', 'Dice difference', 'p (Dice)', 'W/L/T (Dice)', 'HD95 difference (mm)', 'p (HD95)',
                           'W/L/T (HD95)', 'Share of the gap closed (Dice)'], cells)


def contribution_cells(comparison: dict, metric: str) -> List[str]:
    return [mean_std(comparison['difference'], DECIMALS[metric]), p_value(comparison['p_value']),
            f'{comparison["wins"]}/{comparison["losses"]}/{comparison["ties"]}']


def percent(share: float) -> str:
    """A share as a whole percentage (never '-0 %')."""
    return f'{round(100 * share) + 0:.0f} %'


def gap_table(rows: List[dict]) -> List[str]:
    cells = []
    for row in rows:
        gaps = row.get('gap_closed')
        if not gaps:
            continue
        if 'seeds' in row:
            values = [MISSING if gaps[m]['mean'] is None else
                      f'{percent(gaps[m]["mean"])[:-2]} ± {percent(gaps[m]["std"])}' for m in TABLE_METRICS]
        else:
            values = [MISSING if gaps[m] is None else percent(gaps[m]) for m in TABLE_METRICS]
        cells.append([row['method_name'], str(row['seed']), *values])
    return markdown_table(['Method', 'Seed', *METRIC_HEADERS.values()], cells)


def class_table(rows: List[dict], class_names: dict) -> List[str]:
    cells = [[row['method_name'], str(row['seed']), class_names.get(key, key),
              *[mean_std(per_class[m], DECIMALS[m], _counted_cases(row)) for m in TABLE_METRICS]]
             for row in rows for key, per_class in row['per_class'].items()]
    return markdown_table(['Method', 'Seed', 'Class', *METRIC_HEADERS.values()], cells)


def benchmark_markdown(report: dict) -> str:
    """The whole benchmark.md from the content of benchmark.json."""
    s, d = report['settings'], report['dataset']
    lines = [f'# DTC benchmark: {d["name"]}, {s["configuration"]}', '']
    if s['cpu_mode']:
        cpu = report['cpu_mode']
        lines += [f'> **CPU mode was used.** Every method trained the reduced-width configuration '
                  f'`{cpu["configuration"]}` (features per stage {cpu["features_per_stage"]} instead of nnU-Net\'s '
                  f'planned {cpu["parent_features_per_stage"]}, divisor {s["features_divisor"]}); everything else '
                  f'is `{s["configuration"]}`\'s. These numbers show the methods\' relative behaviour, not what '
                  f'nnU-Net\'s full-width network reaches.', '']
    lines += [f'- Dataset: {d["name"]}: {d["num_labeled"]} labelled training cases, {d["num_unlabeled"]} unlabelled '
              f'images, {d["num_test"]} held-out test cases (imagesTs/labelsTs, the only cases scored)',
              f'- Configuration trained: `{report["trained_configuration"]}` (plans `{s["plans_identifier"]}`), '
              f'fold `all`, scored with `checkpoint_final.pth` through `nnUNetv2_predict`',
              f'- Schedule: {s["epochs"]} epoch(s) x {s["iterations_per_epoch"]} iterations '
              f'({s["val_iterations_per_epoch"]} validation iteration(s) per epoch), seed(s) {s["seeds"]}, '
              f'device {s["device"]}',
              '- Methods: ' + '; '.join(f'{METHODS[m].name} = `{m}`'
                                        for m in dict.fromkeys(run['method'] for run in report['runs'])), '',
              f'Values: mean ± std over the test cases of each case\'s mean over the foreground classes '
              f'({", ".join(report["class_names"].values())}); "(n=K)": only K cases had a defined distance (an empty '
              f'prediction or reference has none). p: two-sided Wilcoxon signed-rank test of the per-case Dice '
              f'against nnU-Net (`{VANILLA_TRAINER}`) with the same seed; W/L/T: test cases with higher / lower / '
              f'equal Dice than nnU-Net (for HD95 and ASD lower wins, and two distances within '
              f'{DISTANCE_RELATIVE_TIE_TOLERANCE:g} of the larger are equal: float32 noise). Time/epoch: mean ± std of '
              f'the epoch wall times nnU-Net logged. Parameters: '
              f'of the network nnU-Net\'s predictor builds.']
    if len(s['seeds']) > 1:
        lines += ['', f'Rows "{SEED_SUMMARY}": mean ± std across seeds of the per-seed test means ("(n=K)" there: '
                      f'only K seeds had a defined mean); their p and W/L/T compare the per-case values averaged '
                      f'over seeds.']
    contributions = report['results'][NO_POSTPROCESSING].get('unlabeled_contribution')
    if contributions:
        lines += ['', '## What the unlabelled images add (DTC − its labelled-only ablation, test set as predicted)', '',
                  CONTRIBUTION_EXPLANATION]
        for method, contribution in contributions.items():
            gaps = [row for row in report['results'][NO_POSTPROCESSING]['rows']
                    if row['method'] == method and row.get('gap_closed')]
            lines += ['', f'{METHODS[method].name} (`{method}`) − {METHODS[contribution["ablation"]].name} '
                          f'(`{contribution["ablation"]}`):', '', *contribution_table(contribution, gaps)]
    for postprocessing in (NO_POSTPROCESSING, LARGEST_COMPONENT):
        rows = report['results'][postprocessing]['rows']
        lines += ['', f'## {TABLE_TITLES[postprocessing]}', '', *main_table(rows)]
    for postprocessing in (NO_POSTPROCESSING, LARGEST_COMPONENT):
        rows = report['results'][postprocessing]['rows']
        if any(row['vs_vanilla'] for row in rows):
            lines += ['', f'## Paired differences against nnU-Net ({TABLE_TITLES[postprocessing].lower()})', '',
                      *difference_table(rows)]
    for postprocessing in (NO_POSTPROCESSING, LARGEST_COMPONENT):
        rows = report['results'][postprocessing]['rows']
        if any(row.get('gap_closed') for row in rows):
            lines += ['', f'## Share of the gap to the upper bound closed ({TABLE_TITLES[postprocessing].lower()})',
                      '', GAP_EXPLANATION, '', *gap_table(rows)]
    if report.get('disagreement_validation'):
        lines += ['', '## Does the dual-task disagreement predict the error?', '', DISAGREEMENT_EXPLANATION, '',
                  *markdown_table(['Method', 'Seed', 'Spearman rho (score vs 1 − Dice)', 'p', 'Cases'],
                                 [[METHODS[row['method']].name, str(row['seed']),
                                   MISSING if row['spearman_rho'] is None else f'{row["spearman_rho"]:.3f}',
                                   MISSING if row['p_value'] is None else p_value(row['p_value']), str(row['n_cases'])]
                                  for row in report['disagreement_validation']])]
    if report.get('overlays'):
        lines += ['', '## Overlays', '', OVERLAY_EXPLANATION]
        for overlay in report['overlays']:
            lines += ['', f'![seed {overlay["seed"]}]({overlay["file"]})', '',
                      *markdown_table(['Seed', 'Case', 'Role', 'Slice',
                                       *[f'Dice {key}' for key in overlay['cases'][0]['dice']]]
                                      if overlay['cases'] else ['Seed'],
                                      [[str(overlay['seed']), c['case'], c['role'], str(c['slice']),
                                        *[MISSING if v is None else f'{v:.4f}' for v in c['dice'].values()]]
                                       for c in overlay['cases']])]
    if len(report['class_names']) > 1:
        for postprocessing in (NO_POSTPROCESSING, LARGEST_COMPONENT):
            lines += ['', f'## Per class ({TABLE_TITLES[postprocessing].lower()})', '',
                      *class_table(report['results'][postprocessing]['rows'], report['class_names'])]
    lines += ['', '## Figures', '', *[f'- `{name}`: {text}' for name, text in report['figures'].items()], '',
              'Everything above, per test case and class, the commands run and the settings, is in `benchmark.json`.',
              '']
    return '\n'.join(lines)

