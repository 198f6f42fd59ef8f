"""emo: audio-visual valence/arousal emotion recognition experiments."""

__version__ = "0.1.0"

TARGETS = ("valence", "arousal")
