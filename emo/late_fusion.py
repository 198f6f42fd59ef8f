"""`emo train late`: late fusion of two logged sequence runs, a video one and an audio one.

Their logged dev and test predictions (per frame, and on every windowed cell's test windows) are
joined on the same frames; a weight per target is fitted on dev only (`emo.models.late`), the mix is
scored on dev and test, and one MLflow run holds the weights, the scores, the fused predictions and a
pyfunc model with both networks inside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emo import TARGETS
from emo.core.config import AUDIO_WINDOWS, LABELS
from emo.core.errors import ConfigError
from emo.core.metrics import evaluate
from emo.core.progress import no_artifact_bars
from emo.models.late import fit_weights, mix

log = logging.getLogger(__name__)

MUST_MATCH = ("data_fingerprint", "split_hash", "segment", "hop")  # the same frames, the same targets
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


def check_partners(video, audio) -> None:
    """Refuse two runs that are not a video and an audio sequence run on the same frames and targets."""
    for run, modality in ((video, "video"), (audio, "audio")):
        p = run.data.params
        if p.get("family") != "seq" or p.get("modality") != modality:
            raise ConfigError(
                f"run {run.info.run_id} is a {p.get('family', '?')} run on {p.get('modality', '?')}; late fusion "
                f"takes a seq run on video (--video-run) and a seq run on audio (--audio-run)."
            )
    differ = [k for k in MUST_MATCH if video.data.params.get(k) != audio.data.params.get(k)]
    if differ:
        shown = ", ".join(f"{k} {video.data.params.get(k)} vs {audio.data.params.get(k)}" for k in differ)
        raise ConfigError(
            f"runs {video.info.run_id} and {audio.info.run_id} did not predict the same frames ({shown}); "
            f"fuse runs trained on the same dataset, split, segment and hop."
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


def _read(run_ids: dict[str, str]) -> tuple[dict, dict[str, tuple[pd.DataFrame, pd.DataFrame]]]:
    """The two runs, and their dev, test and test-window prediction tables (a window table only where
    both runs logged it)."""
    from emo.core.errors import TrackingError
    from emo.runs.queries import find_run, run_table

    runs = {}
    for role, run_id in run_ids.items():
        runs[role] = find_run(run_id)
        if runs[role] is None:
            raise ConfigError(f"no MLflow run {run_id!r} (--{role}-run) in this tracking store.")
    check_partners(runs["video"], runs["audio"])
    read = lambda role, name: run_table(runs[role].info.run_id, f"predictions/{name}.parquet")  # noqa: E731
    tables = {name: (read("video", name), read("audio", name)) for name in ("dev", "test")}
    for name in window_names():
        try:
            tables[name] = (read("video", name), read("audio", name))
        except TrackingError:
            log.info("no %s predictions in both runs: that window is not fused.", name)
    return runs, tables


def best_partners(experiment: str) -> tuple[str, str]:
    """The finished seq runs on video and on audio of `experiment` with the best dev objective, the audio
    one among those that predicted the video one's frames (same data, split, segment and hop)."""
    from emo.runs.naming import OBJECTIVE
    from emo.runs.queries import find_experiment, search

    found = find_experiment(experiment)
    if found is None:
        raise ConfigError(f"no MLflow experiment {experiment!r} in this tracking store (--from-experiment).")
    runs = search("tags.`emo.family` = 'seq' and attributes.status = 'FINISHED'", [found.experiment_id])
    best = lambda rs: min(rs, key=lambda r: r.data.metrics.get(OBJECTIVE, float("inf")), default=None)  # noqa: E731
    video = best([r for r in runs if r.data.params.get("modality") == "video"])
    same = lambda r: all(r.data.params.get(k) == video.data.params.get(k) for k in MUST_MATCH)  # noqa: E731
    audio = best([r for r in runs if r.data.params.get("modality") == "audio" and video is not None and same(r)])
    if video is None or audio is None:
        missing = (
            "on video" if video is None else f"on audio with the data, split, segment and hop of {video.info.run_id}"
        )
        raise ConfigError(
            f"experiment {experiment!r} holds no finished seq run {missing}; train one (`emo train seq --modality "
            f"...`) or name the runs with --video-run and --audio-run."
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
) -> LateResult:
    """Fuse logged seq runs `video_run` and `audio_run` (see the module) into a run of its own (nested
    under `parent_run_id`, a matrix's, when given; `tags` added to its own)."""
    from emo.runs.bundle import LateBundle
    from emo.runs.lifecycle import default_experiment, tracked_run
    from emo.runs.queries import model_bundle

    with no_artifact_bars():
        runs, tables = _read({"video": video_run, "audio": audio_run})
        weights, fused, metrics = fuse(tables)
        video, audio = (model_bundle(_model_uri(runs[r])) for r in ("video", "audio"))
    params = runs["video"].data.params
    seed = params.get("seed", "0")
    tags = {
        "emo.synthetic_data": runs["video"].data.tags.get("emo.synthetic_data", "False"),
        "emo.family": "late",
        "emo.model": "late",
        "emo.arch": params.get("arch", "emo"),
        "emo.seed": seed,
        **(tags or {}),
    }
    name = run_name or f"late seq video+audio seed{seed}"
    where = {"nested": True, "parent_run_id": parent_run_id} if parent_run_id else {}
    with tracked_run(
        run_name=name, experiment=default_experiment("emo-late", experiment), tags=tags, **where
    ) as tracker:
        tracker.log_params(
            {
                "family": "late",
                "video_run": video_run,
                "audio_run": audio_run,
                # what the data were, as the partners logged it (the report reads source, fingerprint, split)
                **{k: v for k, v in params.items() if k.startswith("data_") or k in (*MUST_MATCH, "emo_version")},
                **{f"weight_video_{target}": round(float(w), 6) for target, w in zip(TARGETS, weights, strict=True)},
            }
        )
        bundle = LateBundle(video, audio, weights.tolist())
        uri = _log_results(tracker, fused, metrics, bundle, f"late-seq-video-audio-seed{seed}")
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
    shapes = input_shapes("sequence", bundle.dims)
    example = {k: np.zeros((1, *s), bool if k.endswith("_mask") else np.float32) for k, s in shapes.items()}
    uri = tracker.log_model(bundle, signature("sequence", bundle.dims), example, name=model_name)
    tracker.set_tags({"emo.model_uri": uri})
    return uri
