"""What the tests share: temporary nnU-Net folders and console scripts run in them, a tiny plans dict, and trainers
for the tests only (dtc_test_trainers/, a folder for nnUNet_extTrainer)."""
