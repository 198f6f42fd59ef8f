"""`emo train late`: late fusion of two logged runs, a video one and an audio one, on the same targets.

Two kinds of partners:
- sequence runs (`seq` on video and on audio): their logged dev and test predictions (per frame, and on
  every windowed cell's test windows) are joined on the same frames;
- windowed runs (a `video` run and an `audio` run of the same window length): the video model predicts
  its windows, and the audio model each audio row a fusion model of that window reads with it; the mean
  over those rows is the audio prediction for the window. Both are predicted anew on dev and test, so
  the targets are the video run's: the same windows and labels as a fusion cell of that window and label.

A weight per target is fitted on dev only (`emo.models.late`), the mix is scored on dev and test, and one
MLflow run holds the weights, the scores, the fused predictions and a pyfunc model with both networks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.core.config import AUDIO_WINDOWS, LABELS, LATE_PARTNERS
from emo.core.errors import ConfigError
from emo.core.metrics import evaluate
from emo.core.progress import no_artifact_bars
from emo.models.late import fit_weights, mix

log = logging.getLogger(__name__)

MUST_MATCH = ("data_fingerprint", "split_hash", "label_delay", "segment", "hop")  # the same frames and targets
MUST_MATCH_WINDOWS = ("data_fingerprint", "split_hash", "label_delay", "window")  # the same windows
KEYS = ["video_id", "start", "end"]
TRUTH = [f"true_{t}" for t in TARGETS]


@dataclass
class LateResult:
    """The video model's weight per target, the fused dev and test metrics, and where they are tracked."""

    weights: dict[str, float]
    dev: dict[str, float]
    test: dict[str, float]
    run_id: str | None = None
    model_uri: str | None = None


def partner_kind(video) -> str:
    """Which kind of late fusion a video partner run asks for: "seq" or "window"."""
    return "seq" if video.data.params.get("family") == "seq" else "window"


def check_partners(video, audio) -> None:
    """Refuse two runs that are not a video and an audio run of one kind (`LATE_PARTNERS`) on the same data,
    split and frames (sequence runs) or windows (windowed runs)."""
    kind = partner_kind(video)
    for run, family, modality in zip((video, audio), LATE_PARTNERS[kind], ("video", "audio"), strict=True):
        p = run.data.params
        wanted = p.get("family") == family and (kind != "seq" or p.get("modality") == modality)
        if not wanted:
            raise ConfigError(
                f"run {run.info.run_id} is a {p.get('family', '?')} run"
                + (f" on {p['modality']}" if "modality" in p else "")
                + "; late fusion takes a seq run on video and a seq run on audio, or a video run and an audio "
                "run of the same window (--video-run, --audio-run)."
            )
    must = MUST_MATCH if kind == "seq" else MUST_MATCH_WINDOWS
    differ = [k for k in must if video.data.params.get(k) != audio.data.params.get(k)]
    if differ:
        shown = ", ".join(f"{k} {video.data.params.get(k)} vs {audio.data.params.get(k)}" for k in differ)
        raise ConfigError(
            f"runs {video.info.run_id} and {audio.info.run_id} did not predict the same targets ({shown}); "
            f"fuse runs trained on the same dataset and split, with the same "
            + ("segment and hop." if kind == "seq" else "window.")
        )


def joined(video: pd.DataFrame, audio: pd.DataFrame, what: str) -> pd.DataFrame:
    """The two prediction tables on the samples both have (columns valence_video …, valence_audio …)."""
    both = video.merge(audio, on=KEYS, suffixes=("_video", "_audio"))
    if both.empty:
        raise ConfigError(f"the two runs' {what} predictions share no frame: they cannot be fused.")
    truth_v, truth_a = both[[f"{c}_video" for c in TRUTH]].to_numpy(), both[[f"{c}_audio" for c in TRUTH]].to_numpy()
    if not np.allclose(truth_v, truth_a, equal_nan=True):
        raise ConfigError(f"the two runs' {what} predictions have different targets: they cannot be fused.")
    return both


def _parts(both: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video predictions, audio predictions, targets), each (n, 2)."""
    pick = lambda cols: both[cols].to_numpy(np.float64)  # noqa: E731
    return (
        pick([f"{t}_video" for t in TARGETS]),
        pick([f"{t}_audio" for t in TARGETS]),
        pick([f"{c}_video" for c in TRUTH]),
    )


def fused_table(both: pd.DataFrame, weights: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The fused predictions table (as every run logs one), its targets and its predictions."""
    v, a, y = _parts(both)
    p = mix(v, a, weights)
    table = both[KEYS].copy()
    for j, t in enumerate(TARGETS):
        table[t] = p[:, j]
    for j, t in enumerate(TARGETS):
        table[f"true_{t}"] = y[:, j]
    return table, y, p


def fuse(tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[np.ndarray, dict[str, pd.DataFrame], dict]:
    """Weights fitted on `tables["dev"]` only, and every table (dev, test, test windows) fused and scored:
    (weights, fused tables by name, metrics named like a run's: `dev/…`, `test/…`, `test_4s_last/…`)."""
    dev = joined(*tables["dev"], "dev")
    v, a, y = _parts(dev)
    weights = fit_weights(v, a, y)
    fused, metrics = {}, {}
    for name, (video, audio) in tables.items():
        table, y, p = fused_table(joined(video, audio, name), weights)
        fused[name] = table
        metrics[name] = evaluate(y, p, f"{name}/", groups=table["video_id"].to_numpy())
    return weights, fused, metrics


def window_names() -> list[str]:
    """The test-window tables a sequence run logs beside its frame predictions."""
    return [f"test_{w}s_{label}" for w in AUDIO_WINDOWS for label in LABELS]


def _read(run_ids: dict[str, str], dataset=None) -> tuple[dict, dict, dict, dict | None]:
    """The two runs, their networks, their (video, audio) prediction tables by name (dev, test, and for
    sequence runs the test windows both logged), and for windowed runs the fused model's inputs (`spec`)."""
    from emo.runs.queries import find_run, model_bundle

    runs = {}
    for role, run_id in run_ids.items():
        runs[role] = find_run(run_id)
        if runs[role] is None:
            raise ConfigError(f"no MLflow run {run_id!r} (--{role}-run) in this tracking store.")
    check_partners(runs["video"], runs["audio"])
    bundles = {role: model_bundle(_model_uri(run)) for role, run in runs.items()}
    if partner_kind(runs["video"]) == "seq":
        return runs, bundles, _logged_tables(runs), None
    return runs, bundles, *_window_tables(runs["video"], bundles, dataset)


def _logged_tables(runs: dict) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Two sequence runs' logged dev, test and test-window predictions (a window only where both logged it)."""
    from emo.core.errors import TrackingError
    from emo.runs.queries import run_table

    read = lambda role, name: run_table(runs[role].info.run_id, f"predictions/{name}.parquet")  # noqa: E731
    tables = {name: (read("video", name), read("audio", name)) for name in ("dev", "test")}
    for name in window_names():
        try:
            tables[name] = (read("video", name), read("audio", name))
        except TrackingError:
            log.info("no %s predictions in both runs: that window is not fused.", name)
    return tables


def _window_tables(video_run, bundles: dict, dataset=None) -> tuple[dict, dict]:
    """A windowed video network and a per-row audio network, each alone, on the video run's dev and test
    windows (with the audio rows a fusion model of that window reads); and the fused model's inputs."""
    from emo.data.inputs import build_inputs
    from emo.models.late import late_network
    from emo.predict import predictions_table
    from emo.trainer import predict

    video, audio = bundles["video"], bundles["audio"]
    ds = _dataset(video_run, dataset)
    spec = video.inputs
    inputs = build_inputs(
        ds,
        "fusion",
        window_s=spec["window"],
        label=spec["label"],
        stride=spec["stride"],
        audio_window=audio.inputs["audio_window"],
        masked=bool(video.dims.get("video_mask")),
    )  # every split: the audio rows per window are as many as a fusion model of this window reads (train's)
    dims = inputs.dims
    if any(dims.get(k) != v for k, v in video.dims.items()) or dims["audio_dim"] != audio.dims["input_dim"]:
        raise ConfigError(
            f"{ds.folder} gives windows {dims}, but the video model read {video.dims} and the audio model "
            f"{audio.dims}: the dataset changed since they were trained."
        )
    net = late_network(video.network(), audio.network(), [1.0, 1.0], per_row=True)
    tables = {}
    for split in ("dev", "test"):
        parts = []
        for weight in (1.0, 0.0):  # the video network alone, then the audio network alone
            net.weights.fill_(weight)
            truth, pred = predict(net, inputs.samples[split])
            parts.append(predictions_table(inputs.index[split], truth, pred))
        tables[split] = tuple(parts)
    fused_inputs = {
        **spec,
        "kind": "fusion",
        "audio_window": audio.inputs["audio_window"],
        "audio_len": dims["audio_len"],
    }
    return tables, {"dims": dims, "inputs": fused_inputs}


def _dataset(run, dataset=None):
    """The dataset `run` was trained on (`dataset` when the caller holds it), checked by its fingerprint."""
    from emo.core.config import DATA_SETTINGS
    from emo.data.dataset import load_dataset

    p = run.data.params
    if dataset is None:
        options = {k: _value(p[k]) for k in DATA_SETTINGS if k != "data" and k in p}
        dataset = load_dataset(p.get("data", ""), **{k: v for k, v in options.items() if v is not None})
    if dataset.fingerprint != p.get("data_fingerprint") or dataset.split.hash != p.get("split_hash"):
        raise ConfigError(
            f"the dataset {dataset.folder} is not the one run {run.info.run_id} was trained on (its files or "
            f"split changed since): windowed runs are fused on their dataset's windows, read anew."
        )
    return dataset


def _value(text: str):
    """A logged setting's value: None for "auto"/"None", else an int, a float or the text."""
    if text in ("auto", "None", ""):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def best_partners(experiment: str, kind: str = "seq") -> tuple[str, str]:
    """The finished video and audio runs of `kind` (`LATE_PARTNERS`) in `experiment`: the video one with the best
    dev objective, the audio one the best of those that predicted its targets (same data, split, and segment
    and hop, or window)."""
    from emo.runs.naming import OBJECTIVE
    from emo.runs.queries import find_experiment, search

    found = find_experiment(experiment)
    if found is None:
        raise ConfigError(f"no MLflow experiment {experiment!r} in this tracking store (--from-experiment).")
    families = LATE_PARTNERS[kind]
    runs = [
        run
        for family in sorted(set(families))
        for run in search(f"tags.`emo.family` = '{family}' and attributes.status = 'FINISHED'", [found.experiment_id])
    ]

    def plays(run, i: int) -> bool:  # the video (0) or audio (1) partner's family, and modality for seq runs
        modality = ("video", "audio")[i]
        return run.data.params.get("family") == families[i] and run.data.params.get("modality", modality) == modality

    best = lambda rs: min(rs, key=lambda r: r.data.metrics.get(OBJECTIVE, float("inf")), default=None)  # noqa: E731
    video = best([r for r in runs if plays(r, 0)])
    must = MUST_MATCH if kind == "seq" else MUST_MATCH_WINDOWS
    same = lambda r: all(r.data.params.get(k) == video.data.params.get(k) for k in must)  # noqa: E731
    audio = best([r for r in runs if plays(r, 1) and video is not None and same(r)])
    if video is None or audio is None:
        what = f"{families[0]} run" + (" on video" if kind == "seq" else "")
        missing = what if video is None else f"{families[1]} run matching {video.info.run_id} ({', '.join(must)})"
        raise ConfigError(
            f"experiment {experiment!r} holds no finished {missing}; train one or name the runs with "
            f"--video-run and --audio-run."
        )
    return video.info.run_id, audio.info.run_id


def _model_uri(run) -> str:
    uri = run.data.tags.get("emo.model_uri")
    if not uri:
        raise ConfigError(f"run {run.info.run_id} logged no model (it did not finish): it cannot be fused.")
    return uri


def late_fusion(
    video_run: str,
    audio_run: str,
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    tags: dict | None = None,
    dataset=None,
) -> LateResult:
    """Fuse logged runs `video_run` and `audio_run` (see the module) into a run of its own (nested under
    `parent_run_id`, a matrix's, when given; `tags` added to its own). Windowed runs are predicted anew on
    their dataset: `dataset` when the caller holds it, else the one their params name."""
    from emo.runs.bundle import LateBundle
    from emo.runs.lifecycle import default_experiment, tracked_run

    with no_artifact_bars():
        runs, bundles, tables, spec = _read({"video": video_run, "audio": audio_run}, dataset)
        weights, fused, metrics = fuse(tables)
    params = runs["video"].data.params
    seed = params.get("seed", "0")
    what = "seq" if spec is None else f"{float(params['window']):g}s"
    tags = {
        "emo.synthetic_data": runs["video"].data.tags.get("emo.synthetic_data", "False"),
        "emo.family": "late",
        "emo.model": "late",
        "emo.arch": params.get("arch", "emo"),
        "emo.seed": seed,
        **(tags or {}),
    }
    where = {"nested": True, "parent_run_id": parent_run_id} if parent_run_id else {}
    # what the data and targets were, as the video partner logged them (the report reads source, fingerprint,
    # split, and a windowed fusion's window and label)
    shared = (*MUST_MATCH, "emo_version") if spec is None else (*MUST_MATCH_WINDOWS, "label", "stride", "emo_version")
    with tracked_run(
        run_name=run_name or f"late {what} video+audio seed{seed}",
        experiment=default_experiment("emo-late", experiment),
        tags=tags,
        **where,
    ) as tracker:
        tracker.log_params(
            {
                "family": "late",
                "video_run": video_run,
                "audio_run": audio_run,
                **{k: v for k, v in params.items() if k.startswith("data_") or k in shared},
                **{f"weight_video_{target}": round(float(w), 6) for target, w in zip(TARGETS, weights, strict=True)},
            }
        )
        bundle = LateBundle(bundles["video"], bundles["audio"], weights.tolist(), spec)
        uri = _log_results(tracker, fused, metrics, bundle, f"late-{what}-video-audio-seed{seed}")
        run_id = tracker.run_id
    weights_by_target = dict(zip(TARGETS, map(float, weights), strict=True))
    return LateResult(weights_by_target, metrics["dev"], metrics["test"], run_id, uri)


def _log_results(tracker, fused: dict, metrics: dict, bundle, model_name: str) -> str:
    """The fused predictions and scores, and the model holding both networks; the model's URI."""
    from emo.runs.naming import final_metrics
    from emo.runs.pyfunc import input_shapes, signature

    for table_name, table in fused.items():
        tracker.log_table(table, f"predictions/{table_name}.parquet")
    window_scores = {k: v for n in window_names() if n in metrics for k, v in metrics[n].items()}
    tracker.log_metrics({**final_metrics(metrics["dev"], metrics["test"], {}, 0), **window_scores})
    shapes = input_shapes(bundle.kind, bundle.dims)
    example = {k: np.ones((1, *s), bool if k.endswith("_mask") else np.float32) for k, s in shapes.items()}
    uri = tracker.log_model(bundle, signature(bundle.kind, bundle.dims), example, name=model_name)
    tracker.set_tags({"emo.model_uri": uri})
    return uri
