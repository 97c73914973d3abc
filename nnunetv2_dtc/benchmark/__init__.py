"""nnUNetv2_dtc_benchmark: the methods trained alike on one semi-supervised dataset and scored on its held-out test
cases (see docs/benchmark.md). cli -> pipeline -> data, plans (CPU mode), training, prediction, evaluation
(metrics), comparison (statistics) -> report, per_case_table, plots. compare_reports
(nnUNetv2_dtc_compare_reports) pairs the runs of several reports from their per_case.csv with the same comparison."""
