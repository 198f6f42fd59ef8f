"""`emo report`: a matrix's tables as Markdown, CSV and one self-contained HTML page with plots.

The page embeds its figures (PNG as data URIs) and its style, so it can be mailed or logged as one
artifact and opened anywhere, offline.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from emo.results import Report

TITLES = {"baseline": "Baselines (per frame)", "ffnn": "Feed-forward network (per frame)",
          "video": "Video model: window × pooling", "audio": "Audio model: window",
          "fusion": "Fusion: method / variant × window", "best": "Each family's best (chosen on dev RMSE)"}


def markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _bootstrap_text(b: dict) -> str:
    better = "fusion lower (better)" if b["high"] < 0 else "video lower (better)" if b["low"] > 0 else \
        "no difference at this level"
    return (f"Like for like ({b['label']}-frame label, same test windows, seed {b['seed']}): RMSE({b['fusion']}) − "
            f"RMSE({b['video']}) = {b['difference']:+.4f}, {b['level']:.0%} paired bootstrap interval "
            f"[{b['low']:+.4f}, {b['high']:+.4f}] over {b['recordings']} recordings ({b['windows']} windows, "
            f"{b['resamples']} resamples of whole recordings): {better}.")


def markdown(report: Report, title: str) -> str:
    parts = [f"# {title}", ""]
    parts += [f"> {n}" for n in report.notes] + ([""] if report.notes else [])
    for name, table in report.tables.items():
        parts += [f"## {TITLES.get(name, name)}", "", markdown_table(table), ""]
    if report.bootstrap:
        parts += ["## Fusion against video, like for like", "", _bootstrap_text(report.bootstrap), ""]
    return "\n".join(parts)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:right;white-space:nowrap}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.note{background:#fff7e0;border-left:4px solid #e0a000;padding:0.5em 1em;margin:0.5em 0}
img{max-width:100%;border:1px solid #ddd}.scroll{overflow-x:auto}"""


def html_page(report: Report, title: str, pngs: dict[str, bytes]) -> str:
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
           f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    out += [f"<p class=note>{html.escape(n)}</p>" for n in report.notes]
    for name, table in report.tables.items():
        out.append(f"<h2>{html.escape(TITLES.get(name, name))}</h2>")
        out.append("<div class=scroll>" + table.to_html(index=False, border=0, table_id=f"table-{name}") + "</div>")
    if report.bootstrap:
        out.append(f"<h2>Fusion against video, like for like</h2><p id=bootstrap>"
                   f"{html.escape(_bootstrap_text(report.bootstrap))}</p>")
    out.append("<h2>Plots</h2>")
    for name, data in pngs.items():
        out.append(f"<figure><img id=plot-{name} alt='{name.replace('_', ' ')}' "
                   f"src='data:image/png;base64,{base64.b64encode(data).decode()}'></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def write(report: Report, out: str | Path, title: str) -> dict[str, Path]:
    """Write report.md, report.html, tables/NAME.csv and plots/NAME.png under `out`; returns the paths."""
    from emo import plots
    from emo.report_plots import figures

    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    paths = {}
    for name, table in report.tables.items():
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
