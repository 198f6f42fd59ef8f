"""Every registered model's hyperparameters and their defaults, as data.

The constructors take their defaults from this table, and `emo.core.config` reads it to build the
command line's options and to check a setting, without loading torch (seconds on a busy machine).
Sizes the data decides (input widths, window length) are not hyperparameters and are not listed;
a test checks each constructor's signature against this table with `inspect`.
"""

HYPER: dict[str, dict[str, object]] = {
    "ffnn": {"hidden": 128, "modality": "video"},
    "audio": {"hidden": 128},
    "video": {"hidden": 128, "layers": 1, "dropout": 0.2, "pooling": "avg"},
    "fusion1": {"hidden": 128, "dropout": 0.1, "arch": "emo"},
    "fusion2": {"d_model": 128, "heads": 4, "ff": 256, "depth": 2, "dropout": 0.1, "arch": "emo"},
    "fusion3": {"d_model": 128, "heads": 4, "ff": 256, "dropout": 0.1, "arch": "emo"},
    "seq": {"hidden": 64, "layers": 2, "dropout": 0.1, "bidirectional": 0},
    "fusion4": {
        "variant": "v2",
        "d_model": 128,
        "heads": 4,
        "ff": 256,
        "repeats": 3,
        "dropout": 0.1,
        "kernel_size": 3,
        "arch": "emo",
        "readout": "mean",
    },
}
