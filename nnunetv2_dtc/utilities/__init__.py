"""Helpers shared by the method, the data handling, the benchmark and the demo: whole-file writes and JSON,
console scripts and their exit statuses, nnU-Net's folders and dataset ids."""
