"""The figures logged to MLflow: labelled, sized for the artifact view, the metrics in the titles."""

import io

import numpy as np
import pytest
from PIL import Image

from emo.core.metrics import ccc, rmse
from emo.report import plots


def _history(n: int = 20) -> list[dict]:
    out, best = [], np.inf
    for e in range(1, n + 1):
        dev = 1 / e + 0.01 * e  # falls, then rises: best epoch 10
        out.append(
            {
                "epoch": e,
                "train/loss": 1 / e,
                "dev/loss": dev,
                "improved": dev < best,
                "dev/rmse_valence": dev / 2,
                "dev/rmse_arousal": dev / 2 + 0.05,
                "dev/ccc_valence": 1 - dev,
                "dev/ccc_arousal": 0.9 - dev,
            }
        )
        best = min(best, dev)
    return out


def _series(n_videos: int = 3, n: int = 120):
    t = np.arange(n) * 0.5
    y = np.stack([np.sin(t / 5), 0.5 * np.cos(t / 3)], 1)
    rng = np.random.default_rng(0)
    ids = np.repeat([f"rec{i}" for i in range(n_videos)], n)
    y_true = np.tile(y, (n_videos, 1))
    return ids, np.tile(t, n_videos), y_true, np.clip(y_true + rng.normal(0, 0.2, y_true.shape), -1, 1)


def _width(fig) -> int:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # as mlflow's log_figure saves it: no dpi or bbox arguments
    plots.close(fig)
    return Image.open(buf).size[0]


@pytest.fixture
def series():
    return _series()


def test_learning_curves_name_the_loss_use_whole_epochs_and_mark_the_best():
    fig = plots.learning_curves(_history(), loss="ccc")
    loss_ax, rmse_ax, ccc_ax = fig.axes
    assert "CCC V" in loss_ax.get_ylabel() and rmse_ax.get_ylabel() == "dev RMSE" and ccc_ax.get_ylabel() == "dev CCC"
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch"
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        assert any(list(line.get_xdata()) == [10, 10] for line in ax.lines)  # the best-epoch line
    assert "best epoch 10" in fig._suptitle.get_text()
    assert "RMSE V + RMSE A" in plots.learning_curves(_history()).axes[0].get_ylabel()
    assert 1000 <= _width(fig) <= 1400


def test_learning_curves_of_one_epoch_or_without_dev_metrics_still_draw():
    one = plots.learning_curves(_history(1))
    one.canvas.draw()
    assert [float(t) for t in one.axes[0].get_xticks() if 0.9 < t < 1.1] == [1.0]
    bare = [{k: h[k] for k in ("epoch", "train/loss", "dev/loss")} for h in _history(3)]
    fig = plots.learning_curves(bare)
    assert len(fig.axes) == 1 and 1000 <= _width(fig) <= 1400
    plots.close(one)


def test_traces_label_every_panel_and_put_recording_split_and_metrics_in_titles(series):
    ids, t, y_true, y_pred = series
    fig = plots.traces(ids, t, y_true, y_pred, videos=2, title="dev")
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_ylabel() for ax in axes[0]] == ["valence", "arousal"]
    assert all(ax.get_xlabel() == "window start (s)" for ax in axes[-1])
    sel = ids == "rec1"
    title = axes[1, 1].get_title()
    assert "dev" in title and "rec1" in title and "arousal" in title
    assert f"CCC {ccc(y_true[sel, 1], y_pred[sel, 1]):.3f}" in title
    assert f"RMSE {rmse(y_true[sel, 1], y_pred[sel, 1]):.3f}" in title
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["label", "prediction"]
    assert 1000 <= _width(fig) <= 1400


def test_traces_break_the_line_over_a_gap_in_time():
    t = np.r_[np.arange(10.0), 100 + np.arange(10.0)]
    _, y = plots._with_gaps(t, np.zeros(20))
    assert np.isnan(y).sum() == 1


def test_predicted_vs_true_has_identity_equal_axes_split_and_pooled_metrics(series):
    _, _, y_true, y_pred = series
    fig = plots.predicted_vs_true(y_true, y_pred, split="test", max_points=100)
    assert len(fig.axes) == 2
    for j, (ax, target) in enumerate(zip(fig.axes, ("valence", "arousal"))):
        assert ax.get_xlabel() == f"true {target}" and ax.get_ylabel() == f"predicted {target}"
        assert ax.get_xlim() == ax.get_ylim() == (-1.05, 1.05) and ax.get_aspect() == 1.0
        assert any(list(line.get_xdata()) == list(line.get_ydata()) == [-1.05, 1.05] for line in ax.lines)
        title = ax.get_title()
        assert title.startswith(f"test {target}")
        assert f"CCC {ccc(y_true[:, j], y_pred[:, j]):.3f}" in title  # pooled: every point, not the 100 shown
        assert f"RMSE {rmse(y_true[:, j], y_pred[:, j]):.3f}" in title
        assert len(ax.collections[0].get_offsets()) == 100
    assert 1000 <= _width(fig) <= 1400


def test_every_text_is_at_least_10_pt(series):
    ids, t, y_true, y_pred = series
    for fig in (
        plots.learning_curves(_history()),
        plots.traces(ids, t, y_true, y_pred),
        plots.predicted_vs_true(y_true, y_pred),
    ):
        fig.canvas.draw()
        sizes = [text.get_fontsize() for text in fig.findobj(plots.plt.Text) if text.get_text()]
        assert sizes and min(sizes) >= 10
        plots.close(fig)


def test_plots_leave_global_matplotlib_settings_alone(series):
    before = plots.plt.rcParams["font.size"]
    plots.close(plots.predicted_vs_true(*series[2:]))
    assert plots.plt.rcParams["font.size"] == before
