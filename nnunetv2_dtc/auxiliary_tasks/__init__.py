"""DTC's second task as a plug-in: what the extra output channels learn on labelled patches and how they are compared
with the segmentation on every patch (base.py). LevelSetTask is the paper's; BoundaryTask is a second one."""
