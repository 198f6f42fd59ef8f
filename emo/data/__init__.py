"""Dataset folders: tables, alignment, the split, windows and torch samples.

Import the modules themselves (`emo.data.dataset`, `emo.data.windows`, ...): nothing is imported
here, so that the command line can read a constant such as `emo.data.align.GRID_FPS` without
loading pandas or torch.
"""
