"""`sftmix report`: one self-contained HTML page (figures inlined) and a Markdown twin (figures
beside it) for a sweep or an experiment, logged back to the sweep's parent run."""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from pathlib import Path

from ..tracking.runs import artifact_dict, attach_directory, load_runs, online_trajectories
from . import findings, plots, study
from .table import build_rows, domains_of
from .transfer import proxy_lines


def _fmt(row, o) -> str:
    s = row.spread.get(o)
    return f"{row.scores[o]:.3f}" + (f" ± {s:.3f}" if s is not None else "")


def _interval(row, o) -> str:
    iv = row.intervals.get(o)
    return f"[{iv[0]:.3f}, {iv[1]:.3f}] ({iv[2]} problems)" if iv else "no interval"


def _best_table(ctx) -> tuple[list[str], list[list[str]]]:
    """The best trial per objective, its 95% interval, and whether the intervals tell it from
    the runner-up (findings.best_verdicts): a pick from a tie or from noise says so."""
    header = ["objective", "trial", "score", "95% interval", "told apart", "strategy",
              "samples per domain"]
    return header, [[o, r.name, _fmt(r, o), _interval(r, o), ctx["best_told"].get(o, ""),
                     r.strategy or "", _mixture(r)] for o, r in ctx["best"].items()]


def _mixture(row) -> str:
    text = " ".join(f"{d}={n:.0f}" for d, n in row.samples.items() if n) or "?"
    # an online trial's counts are the prior its weights start from (drawn_<domain>: the draws)
    return f"prior {text}" if row.strategy == "online" else text


def build_report(tracking_uri: str, out_dir: Path, *, sweep: str | None = None,
                 experiment: str | None = None, objectives: dict[str, str]) -> dict:
    parent, runs = load_runs(tracking_uri, sweep=sweep, experiment=experiment)
    names = list(objectives)
    rows = build_rows(runs, objectives)
    domains = domains_of(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = plots.all_figures(rows, names, domains)
    online = plots.online_weights(online_trajectories(tracking_uri, runs, domains))
    if online is not None:
        figures["online_weights"] = online
    images = {}
    for key, fig in figures.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        (out_dir / f"{key}.png").write_bytes(buf.getvalue())
        images[key] = base64.b64encode(buf.getvalue()).decode()
        plots.plt.close(fig)
    data_domains = artifact_dict(tracking_uri, parent.run_id, "data_domains.json") if parent \
        else None
    context = report_context(
        rows, runs, objectives, domains,
        title=f"sftmix report: {parent.name if parent else experiment}",
        source=f"sweep run {parent.run_id}" if parent else f"experiment {experiment!r}",
        settings=dict(sorted(parent.params.items())) if parent else {},
        data_domains=data_domains or {}, images=images,
        proxy=proxy_lines(tracking_uri, parent, runs, objectives))
    failed = context["failed"]
    (out_dir / "report.html").write_text(render_html(context))
    (out_dir / "report.md").write_text(render_markdown(context))
    if parent is not None:
        attach_directory(tracking_uri, parent.run_id, out_dir, "report")
    return {"rows": len(rows), "failed": len(failed), "figures": sorted(figures),
            "html": str(out_dir / "report.html"), "markdown": str(out_dir / "report.md")}


def report_context(rows, runs, objectives: dict[str, str], domains: list[str], *, title: str,
                   source: str, settings: dict | None = None, data_domains: dict | None = None,
                   images: dict | None = None, proxy: list[str] = ()) -> dict:
    """What the HTML and Markdown pages render: the findings, the best per objective and
    whether the intervals tell it apart, the rows and the failed runs."""
    sections, strategy_cells = findings_sections(rows, objectives, domains)
    sections["Proxy vs target"] = list(proxy)
    return {
        "title": title, "source": source,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": settings or {}, "objectives": objectives, "rows": rows,
        "failed": [r for r in runs if r.status != "FINISHED"], "sections": sections,
        "strategy_cells": strategy_cells,
        "best": findings.best_per_objective(rows, objectives) if rows else {},
        "best_told": findings.best_verdicts(rows, objectives),
        "images": images or {}, "data_domains": data_domains or {}, "domains": domains,
    }


def findings_sections(rows, objectives: dict[str, str], domains: list[str]
                      ) -> tuple[dict[str, list[str]], dict]:
    """Every computed finding, titled, and the strategy cells: what a report says of its rows
    (the property tests hold each claim to the rows)."""
    names = list(objectives)
    strategy_lines, strategy_cells = findings.strategies(rows, objectives)
    sections = {
        "Floor and ceiling": findings.limits(rows, names),
        "Data amount": findings.amount(rows, names, domains),
        "Scaling, one domain at a time": findings.scaling(rows, objectives, domains),
        "Ratio": findings.ratio(rows, names, domains),
        "Mixing": findings.mixing(rows, objectives, domains),
        "The study's findings": [
            f"{v.finding}: {v.verdict.upper()}. Here: {v.lab}. Study: {v.study}"
            for v in study.verdicts(rows, applicable_only=True)],
        "Strategies": strategy_lines,
        "Best per objective": findings.best(rows, objectives),
        "Uncertainty": [findings.uncertainty(rows), findings.intervals_note(rows, names),
                        findings.METHOD],
    }
    return sections, strategy_cells


# ---------------------------------------------------------------- rendering

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid
#ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.front td{background:#fff1f0}img{max-width:100%;border:1px solid #eee;margin:.4em 0}
.muted{color:#777;font-size:.85em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def _table_html(header: list[str], body: list[list[str]], classes: list[str] | None = None,
                left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>'
                   for i, h in enumerate(header))
    rows = []
    for j, cells in enumerate(body):
        tds = "".join(f'<td class="{"l" if i < left else ""}">{html.escape(str(c))}</td>'
                      for i, c in enumerate(cells))
        cls = f' class="{classes[j]}"' if classes and classes[j] else ""
        rows.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


NOISE_NOTE = ("★ on the front; ≈ off it but within noise: no front point beats it beyond the 95% "
              "intervals (at its best bounds against the front point's worst).")


def _trial_table(ctx) -> tuple[list[str], list[list[str]], list[str]]:
    names = list(ctx["objectives"])
    header = ["trial", "front", "rank", "strategy", "k", "samples per domain", *names, "runs"]
    body = [[r.name, "★" if r.front else "≈" if r.within_noise else "", str(r.rank),
             findings._strategy_name(r) if r.strategy == "online" else r.strategy or "",
             "" if r.k is None else f"{r.k:g}", _mixture(r), *[_fmt(r, o) for o in names],
             str(r.n)] for r in ctx["rows"]]
    return header, body, ["front" if r.front else "" for r in ctx["rows"]]


def _figure_titles() -> dict[str, str]:
    return {"pairwise": "Abilities against each other (front in red)",
            "parallel": "From mixture to abilities",
            "scaling": "Scaling with data amount (RQ1)",
            "mixed_vs_single": "Mixed against single-domain training (RQ2)",
            "dmt_k": "DMT's k trade-off",
            "online_weights": "Online trials: domain weights during training"}


def render_html(ctx) -> str:
    names = list(ctx["objectives"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>"
             f"{html.escape(ctx['title'])}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(ctx['title'])}</h1>",
             f"<p class='muted'>{html.escape(ctx['source'])} · generated {ctx['generated']} · "
             f"{len(ctx['rows'])} points, {len(ctx['failed'])} failed runs · objectives: "
             f"{html.escape(', '.join(f'{k} ({v})' for k, v in ctx['objectives'].items()))}"
             f"</p>", "<h2>Findings</h2>"]
    for title, lines in ctx["sections"].items():
        if lines:
            parts.append(f"<h3>{html.escape(title)}</h3><ul>" +
                         "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
    parts.append("<h2>Best mixture per objective</h2>")
    parts.append(_table_html(*_best_table(ctx), left=2))
    parts.append(f"<h2>Pareto front and all points</h2><p class='muted'>{NOISE_NOTE}</p>")
    header, body, classes = _trial_table(ctx)
    parts.append(_table_html(header, body, classes, left=1))
    if ctx["strategy_cells"]:
        parts.append("<h2>Strategies (the study's Table 1 layout)</h2>")
        parts.append(_table_html(["strategy", *names],
                                 [[s, *[findings.cell_text(c[o]) for o in names]]
                                  for s, c in sorted(ctx["strategy_cells"].items())]))
    titles = _figure_titles()
    if ctx["images"]:
        parts.append("<h2>Figures</h2>")
        for key, b64 in ctx["images"].items():
            parts.append(f"<h3>{html.escape(titles[key])}</h3>"
                         f"<img alt='{key}' src='data:image/png;base64,{b64}'>")
    if ctx["data_domains"]:
        parts.append("<h2>Data</h2>")
        parts.append(_table_html(["domain", "source", "format", "rows", "usable", "skipped",
                                  "tokens", "fingerprint"],
                                 [[d, i.get("source"), i.get("format"), i.get("rows"),
                                   i.get("size"), sum((i.get("skipped") or {}).values()),
                                   i.get("tokens"), i.get("fingerprint")]
                                  for d, i in ctx["data_domains"].items()], left=3))
    if ctx["settings"]:
        parts.append("<h2>Settings</h2>")
        parts.append(_table_html(["setting", "value"], [[k, v] for k, v in
                                                        ctx["settings"].items()], left=2))
    if ctx["failed"]:
        parts.append("<h2>Failed runs</h2><ul>" + "".join(
            f"<li>{html.escape(r.name)}: {html.escape(r.tags.get('sftmix.error', r.status))}"
            f"</li>" for r in ctx["failed"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(ctx) -> str:
    names = list(ctx["objectives"])

    def md_table(header, body):
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
        return "\n".join(lines)

    out = [f"# {ctx['title']}", "",
           f"{ctx['source']} · generated {ctx['generated']} · {len(ctx['rows'])} points, "
           f"{len(ctx['failed'])} failed runs", "", "## Findings", ""]
    for title, lines in ctx["sections"].items():
        if lines:
            out += [f"### {title}", "", *[f"- {x}" for x in lines], ""]
    out += ["## Best mixture per objective", "",
            md_table(*_best_table(ctx)), "",
            "## Pareto front and all points", "", NOISE_NOTE, ""]
    header, body, _ = _trial_table(ctx)
    out += [md_table(header, body), ""]
    if ctx["strategy_cells"]:
        out += ["## Strategies", "", md_table(["strategy", *names], [
            [s, *[findings.cell_text(c[o]) for o in names]]
            for s, c in sorted(ctx["strategy_cells"].items())]), ""]
    titles = _figure_titles()
    for key in ctx["images"]:
        out += [f"### {titles[key]}", "", f"![{key}]({key}.png)", ""]
    return "\n".join(out)
