"""Data layer: tables → split → windows → torch samples (see the data contract)."""

from emo.data.dataset import Dataset, load_dataset, resolve_data
from emo.data.split import Split
from emo.data.tables import FrameTable, read_table
from emo.data.windows import Windows, make_windows, sync_audio, window_frames, window_labels

__all__ = ["Dataset", "FrameTable", "Split", "Windows", "load_dataset", "make_windows", "read_table",
           "resolve_data", "sync_audio", "window_frames", "window_labels"]
