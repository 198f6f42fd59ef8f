"""Where models logged by emo 0.1.0 look for their pyfunc: their stored models-from-code file imports
`emo.pyfunc.EmoModel`. It lives in `emo.runs.pyfunc`; this name stays so that those models still load."""

from emo.runs.pyfunc import EmoModel

__all__ = ["EmoModel"]
