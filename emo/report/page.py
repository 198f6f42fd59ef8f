"""`emo report`: a matrix's tables as Markdown, CSV and one self-contained HTML page with plots.

The page embeds its figures (PNG as data URIs) and its style, so it can be mailed or logged as one
artifact and opened anywhere, offline. Text from the runs (model names, tags) is escaped in both the
page and the Markdown: a tag such as `<script>` or `a | b` shows as written, never as markup.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import pandas as pd

from emo.report.comparison import Comparison
from emo.report.tables import Report

TITLES = {
    "baseline": "Baselines (per frame)",
    "ffnn": "Feed-forward network (per frame)",
    "video": "Video model: window × pooling",
    "audio": "Audio model: window",
    "fusion": "Fusion: method / variant × window",
    "field": "Field baselines: sequence models over long segments and late fusion (AVEC, MuSe)",
    "best": "Each family's best (chosen on dev RMSE)",
    "groups": "Per group: test RMSE and CCC on each group's test recordings",
}
# Characters that start inline Markdown anywhere in a line (a table cell, a list item); `<` and `&` become entities.
MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")


def md(text: object) -> str:
    """`text` as literal Markdown: no HTML, emphasis, links or table cells of its own, on one line."""
    escaped = html.escape(" ".join(str(text).split()), quote=False)
    return MD_SPECIAL.sub(r"\\\1", escaped)


def markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(md(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(md(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _verdict(result: dict, partner: str = "video") -> str:
    if result["recordings"] < 2:  # resampling one recording gives the same difference every time: no interval
        return "one recording: no interval"
    return (
        "fusion lower (better)"
        if result["high"] < 0
        else f"{partner} lower (better)"
        if result["low"] > 0
        else "no difference at this level"
    )


def comparison_intro(c: Comparison) -> str:
    """What the comparison's numbers are, in one paragraph."""
    p = c.pooled
    return (
        f"{c.fusion} against {c.video}, both with {c.label}-frame labels, on the same {p['windows']} test "
        f"windows of {p['recordings']} recordings. Metric: {c.metric}. Each difference is fusion − {c.partner} "
        f"(negative: fusion better), with a {p['level']:.0%} paired bootstrap interval ({p['resamples']} "
        f"resamples of whole recordings). Pooled: the mean over seeds {', '.join(map(str, p['seeds']))} of "
        f"each seed's difference, a drawn recording bringing its windows of every seed."
    )


def comparison_table(c: Comparison) -> pd.DataFrame:
    """One row per seed, then the pooled row (with two seeds or more)."""
    rows = {f"seed {s}": r for s, r in c.per_seed.items()}
    if len(c.per_seed) > 1:
        rows[f"pooled over {len(c.per_seed)} seeds"] = c.pooled
    return _results(rows, "seeds", c.pooled["level"], c.partner)


def group_intro(c: Comparison) -> str:
    """What the comparison per group is, in one paragraph."""
    return (
        f"The same comparison on each group's test windows only (the windows of that group's recordings), "
        f"pooled over seeds {', '.join(map(str, c.pooled['seeds']))}; each interval resamples that group's "
        f"recordings, so a group of few recordings has a wide one. Metric: {c.metric}."
    )


def group_table(c: Comparison) -> pd.DataFrame:
    """One row per group, with the recordings and windows it holds."""
    table = _results(c.per_group, "group", c.pooled["level"], c.partner)
    counts = pd.DataFrame.from_dict(c.per_group, orient="index")
    table.insert(1, "recordings", counts["recordings"].to_numpy())
    table.insert(2, "windows", counts["windows"].to_numpy())
    return table


def _results(rows: dict[str, dict], first: str, level: float, partner: str = "video") -> pd.DataFrame:
    """`paired_bootstrap` results as a table: one row per key of `rows`, named in column `first`."""
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return pd.DataFrame(
        {
            first: frame.index,
            "fusion": frame["rmse_a"].map("{:.4f}".format),
            partner: frame["rmse_b"].map("{:.4f}".format),
            f"fusion − {partner}": frame["difference"].map("{:+.4f}".format),
            f"{level:.0%} interval": [f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in zip(frame["low"], frame["high"])],
            "reading": [_verdict(r, partner) for r in rows.values()],
        }
    )


def markdown(report: Report, title: str) -> str:
    parts = [f"# {md(title)}", "", "## Provenance", ""]
    parts += [f"- **{md(k)}**: {md(v)}" for k, v in report.provenance.items()] + [""]
    parts += [f"> {md(n)}" for n in report.notes] + ([""] if report.notes else [])
    for name, table in report.tables.items():
        parts += [f"## {md(TITLES.get(name, name))}", "", markdown_table(table), ""]
    for c in _comparisons(report):
        parts += [f"## {md(_heading(c))}", "", md(comparison_intro(c)), "", markdown_table(comparison_table(c)), ""]
        if c.per_group:
            parts += [
                f"## {md(_heading(c))}, per group",
                "",
                md(group_intro(c)),
                "",
                markdown_table(group_table(c)),
                "",
            ]
    return "\n".join(parts)


def _comparisons(report: Report) -> list[Comparison]:
    """The like-for-like comparisons the report holds: with video, then with the field's sequence model."""
    return [c for c in (report.comparison, report.field_comparison) if c is not None]


def _heading(c: Comparison) -> str:
    return f"Fusion against {'the field' if c.partner != 'video' else 'video'}, like for like"


def _anchor(c: Comparison) -> str:
    """The page ids of a comparison's paragraph and table (the video one keeps its ids)."""
    return "comparison" if c.partner == "video" else "comparison-field"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


# Cells wrap at spaces and the std sits under its mean, so a 16-column table fits 1200 px without scrolling.
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 5px;
text-align:right;vertical-align:top}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
#table-best :is(td,th):nth-child(2),#table-comparison :is(td,th):last-child{text-align:left}
#table-groups :is(td,th):is(:nth-child(2),:nth-child(7)),#table-comparison-groups :is(td,th):last-child{text-align:left}
.sd{display:block;color:#666;font-size:11px;white-space:nowrap}
.note{background:#fff7e0;border-left:4px solid #e0a000;padding:0.5em 1em;margin:0.5em 0}
dl.provenance{display:grid;grid-template-columns:max-content 1fr;gap:2px 1em;font-size:13px}
dl.provenance dt{font-weight:600}dl.provenance dd{margin:0;overflow-wrap:anywhere}
img{max-width:100%;border:1px solid #ddd}.scroll{overflow-x:auto}"""


def html_table(frame: pd.DataFrame, table_id: str) -> str:
    """`frame` as an HTML table, every value escaped, a "mean ± std" cell's std on a line of its own."""
    shown = frame.astype(str).map(html.escape).replace(r" ± (\S+)$", r"<span class=sd>± \1</span>", regex=True)
    shown.columns = [html.escape(str(c)) for c in frame.columns]
    return "<div class=scroll>" + shown.to_html(index=False, border=0, escape=False, table_id=table_id) + "</div>"


def html_page(report: Report, title: str, pngs: dict[str, bytes]) -> str:
    head = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
    )
    facts = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in report.provenance.items())
    out = [head, f"<h2>Provenance</h2><dl class=provenance id=provenance>{facts}</dl>"]
    out += [f"<p class=note>{html.escape(n)}</p>" for n in report.notes]
    for name, table in report.tables.items():
        out.append(f"<h2>{html.escape(TITLES.get(name, name))}</h2>")
        out.append(html_table(table, f"table-{name}"))
    for c in _comparisons(report):
        at, heading = _anchor(c), html.escape(_heading(c))
        out.append(f"<h2>{heading}</h2><p id={at}>{html.escape(comparison_intro(c))}</p>")
        out.append(html_table(comparison_table(c), f"table-{at}"))
        if c.per_group:
            out.append(f"<h2>{heading}, per group</h2><p id={at}-groups>{html.escape(group_intro(c))}</p>")
            out.append(html_table(group_table(c), f"table-{at}-groups"))
    out.append("<h2>Plots</h2>")
    for name, data in pngs.items():
        out.append(
            f"<figure><img id=plot-{name} alt='{name.replace('_', ' ')}' "
            f"src='data:image/png;base64,{base64.b64encode(data).decode()}'></figure>"
        )
    out.append("</body></html>")
    return "\n".join(out)


def write(report: Report, out: str | Path, title: str) -> dict[str, Path]:
    """Write report.md, report.html, tables/NAME.csv (numbers: mean and std columns) and plots/NAME.png
    under `out`; returns the paths."""
    from emo.report import plots
    from emo.report.figures import figures

    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    paths = {}
    for name, table in report.numbers.items():
        paths[f"tables/{name}.csv"] = out / "tables" / f"{name}.csv"
        table.to_csv(paths[f"tables/{name}.csv"], index=False)
    pngs = {}
    for name, fig in figures(report.aggregate).items():
        pngs[name] = _png(fig)
        plots.close(fig)
        paths[f"plots/{name}.png"] = out / "plots" / f"{name}.png"
        paths[f"plots/{name}.png"].write_bytes(pngs[name])
    paths["report.md"] = out / "report.md"
    paths["report.md"].write_text(markdown(report, title) + "\n")
    paths["report.html"] = out / "report.html"
    paths["report.html"].write_text(html_page(report, title, pngs))
    return paths
