"""One report per run: a self-contained HTML file (figures embedded) and the same in Markdown.

It says where the numbers come from before it shows them: the environment of every results directory,
what the counts cover and how timing and memory were measured (read from the records' own method
strings, so the text cannot drift from the code that measured), how rows are paired and judged, then a
summary of each variant's real effects with their intervals (`findings`), the tables (split per kind of
metric where one would not fit a 1280 px window), each runtime against torch eager where the results hold
several (`runtime_section`), and the figures.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import unet_bench
from unet_bench.analysis import stats
from unet_bench.analysis.compare import Comparison, compare
from unet_bench.analysis.findings import summarize
from unet_bench.analysis.plots import FigureFile, make_figures
from unet_bench.analysis.profile_section import profile_section
from unet_bench.analysis.reconciliation import breakdown_table, counters_intro, markdown, totals_table
from unet_bench.analysis.results import load, ok
from unet_bench.analysis.runtime_section import RuntimeSection, runtime_section
from unet_bench.analysis.tables import caption, noise_line, sections
from unet_bench.counter_figures import Reconciliation
from unet_bench.errors import BenchError
from unet_bench.suite.store import prepare_dir

# The metrics of the report's tables and summary, in this order, where measured (per output pixel where
# the compared outputs differ in size).
REPORT_METRICS = ("params", "macs", "train_flops", "peak_mem_bytes", "saved_activation_bytes",
                  "latency_ms_median", "peak_fraction", "dice_mean", "iou_mean", "dice_threshold",
                  "dice_all_foreground", "object_f1_mean", "object_f1_threshold", "map_mean", "rand_error_mean",
                  "curve_object_f1_gain", "object_f1_per_gflop",
                  "energy_j_per_image", "energy_j_per_output_mpix", "energy_j_per_train_step")


@dataclass
class Report:
    """The report's content, independent of the output format."""

    title: str
    sources: list[str]
    summary: list[str]
    environment: pd.DataFrame
    methodology: list[tuple[str, str]]  # (topic, text)
    comparison: Comparison
    figures: list[FigureFile]
    notes: list[str] = field(default_factory=list)
    profiles: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (title, per-kind table) per step
    counters: list[tuple[str, Reconciliation]] = field(default_factory=list)  # (network, FLOP counters beside ours)
    runtimes: RuntimeSection | None = None  # each runtime against torch eager, where there are several


def write_report(sources: Sequence[str | Path], out_dir: str | Path | None = None,
                 baseline: str | None = None, per_image: bool = False,
                 counters: Sequence[tuple[str, Reconciliation]] = ()) -> tuple[Path, Path, list[str]]:
    """Load ``sources``, draw the figures and write ``report.html`` and ``report.md`` into ``out_dir``
    (default: ``report/`` inside the first results directory). Returns the two paths and the notes worth
    a line on stderr (lines of the results left out, pairing, load). ``counters``: the FLOP counters
    reconciled with our count, titled (`unet_bench.measure.counter_runs.report_reconciliations`), as a
    section of their own."""
    frame = load(sources)
    out = Path(out_dir) if out_dir is not None else _default_out(sources[0])
    html_path, md_path = out / "report.html", out / "report.md"
    prepare_out(out, [html_path, md_path])
    try:
        report = build(frame, out / "figures", baseline, per_image)
        report.counters = list(counters)
        html_path.write_text(to_html(report), encoding="utf-8")
        md_path.write_text(to_markdown(report, figures_relative_to=out), encoding="utf-8")
    except OSError as error:  # the disk filled up, or permissions changed, while writing
        raise BenchError(f"{out}: cannot write the report: {error.strerror or error}") from None
    return html_path, md_path, report.notes


def _default_out(source: str | Path) -> Path:
    path = Path(source)
    return (path if path.is_dir() else path.parent) / "report"


def prepare_out(out: Path, files: list[Path]) -> None:
    """Create the report folder and its figures folder, or refuse in one line before anything is drawn: a
    folder that cannot be made or written, and a link (or folder) where the report would write a file. The
    report never writes through a link: one in a copied results folder could point anywhere."""
    figures = out / "figures"
    for folder in (out, figures):
        if folder == figures and folder.is_symlink():
            raise BenchError(f"{folder} is a symbolic link; the report never writes through a link: move it away, "
                             "or give --out another folder")
        prepare_dir(folder, "report")
    drawn = [p for p in figures.iterdir() if p.suffix in (".png", ".svg")]
    for path in [*files, *drawn]:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            what = "a symbolic link" if path.is_symlink() else "not a regular file"
            raise BenchError(f"{path} is {what}; the report never writes through a link or over a folder: move "
                             "it away, or give --out another folder")


def build(frame: pd.DataFrame, figures_dir: Path, baseline: str | None = None, per_image: bool = False) -> Report:
    """Everything the report says, from a loaded results frame."""
    comparison = compare(frame, baseline, per_image=per_image, defaults=REPORT_METRICS)
    sources = list(dict.fromkeys(frame["source"]))
    plot_baseline = None if comparison.by_source else comparison.baseline
    roofline_figures, profile_tables = profile_section(frame, figures_dir, comparison.baseline)
    return Report(
        title=f"unet-bench report: {', '.join(sources)}",
        sources=sources,
        summary=summarize(comparison),
        environment=environment(frame),
        methodology=methodology(frame, comparison),
        comparison=comparison,
        figures=make_figures(frame, figures_dir, plot_baseline, per_image=per_image) + roofline_figures,
        notes=[*frame.attrs.get("notes", []), *comparison.notes],
        profiles=profile_tables,
        runtimes=runtime_section(frame, figures_dir),
    )


# --- content ---------------------------------------------------------------------------------------------


def environment(frame: pd.DataFrame) -> pd.DataFrame:
    """One column per results directory: what ran where (versions, hardware, threads, git commit)."""
    columns = {}
    for source, rows in frame.groupby("source", sort=False):
        info = {
            "records": f"{len(rows)} ({', '.join(f'{n} {s}' for s, n in rows['status'].value_counts().items())})",
            "suite": ", ".join(sorted({str(s) for s in rows["suite"].dropna()})) or "-",
            "measured": _span(rows["timestamp"]),
        }
        for column in [c for c in rows.columns if c.startswith("env_")]:
            values = sorted({str(v) for v in rows[column].dropna() if str(v) != ""})
            if values and column != "env_timestamp":
                info[column.removeprefix("env_").replace("_", " ")] = ", ".join(values)
        columns[source] = info
    return pd.DataFrame(columns).fillna("-")


def _span(timestamps: pd.Series) -> str:
    stamps = sorted(str(t) for t in timestamps.dropna() if str(t))
    if not stamps:
        return "-"
    return stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1]}"


def methodology(frame: pd.DataFrame, comparison: Comparison) -> list[tuple[str, str]]:
    """What each number means and how it was measured; the method strings come from the records."""
    done = ok(frame)
    out = []
    if done["macs"].notna().any():
        scopes = _distinct(done["flops_scope"])
        exact = done.dropna(subset=["macs", "flops"])
        doubled = bool((exact["flops"] == 2 * exact["macs"]).all())
        text = ("MACs are the multiply-accumulates of one forward pass per image, counting convolutions and "
                "transposed convolutions only; FLOPs = 2 × MACs"
                + ("" if doubled else " (NOTE: some records do not satisfy FLOPs = 2 × MACs)") + ". "
                "Pooling, cropping, concatenation, activations, interpolation and normalisation are not in "
                "these counts; where measured, they are reported apart as non-conv FLOPs.")
        if scopes:
            text += " Scope recorded by the counter: " + "; ".join(f"“{s}”" for s in scopes) + "."
        agree = done.get("extra_crosscheck_agree", pd.Series(dtype=object))
        agree = agree[agree.map(lambda v: isinstance(v, bool))].astype(bool)  # as the counter writes it
        if len(agree):
            texts = done.get("extra_crosscheck_text", pd.Series(index=done.index, dtype=object))
            differ = _distinct(texts[agree.index[~agree]])
            text += (f" Cross-check against torch's FlopCounterMode: identical in {int(agree.sum())} of {len(agree)} "
                     "records" + (": " + "; ".join(differ[:3]) + ("; ..." if len(differ) > 3 else "") if differ else "")
                     + ".")
        if "extra_train_flops_scope" in done:
            scopes = _distinct(done["extra_train_flops_scope"])
            if scopes:
                text += " Training-step FLOPs: " + "; ".join(scopes) + "."
        out.append(("Counts", text))
    timed = done.dropna(subset=["latency_ms_median"])
    if not timed.empty:
        methods = [c for c in timed.columns if "timing_method" in c or c.endswith("timer")]
        described = _distinct(pd.concat([timed[c] for c in methods])) if methods else []
        n = timed["latency_n"].dropna()
        text = ("Latency is the time of one batch (inference: forward only; train: forward, loss, backward and "
                "optimizer step), reported as the median of the timed measurements of a case and its "
                "spread as the interquartile range (p25-p75)")
        text += f"; {int(n.min())} to {int(n.max())} timed measurements per case" if len(n) else ""
        text += (". Each repeat of a case is a separate record measured in a fresh process: tables show the "
                 "geometric mean of the repeats' medians, error bars its 95 % interval over the repeats (for a "
                 "case measured once, the p25-p75 of its timed measurements). Latency per output megapixel "
                 "divides by the output pixels of the batch (all classes counted once).")
        if timed["warmup_s"].notna().any():
            text += (" Warm-up calls (where any compilation or cuDNN autotuning happens) were excluded from the "
                     f"timing ({timed['warmup_s'].median():.2g} s median per case).")
        if timed["compile_s"].notna().any():
            text += " torch.compile time is reported apart (compile time) and excluded from the timing."
        threads = _distinct(timed["threads"].dropna().astype(int).astype(str))
        if threads:
            text += f" Intra-op threads: {', '.join(threads)}."
        if described:
            text += " Timer: " + "; ".join(described) + "."
        calls = pd.to_numeric(timed.get("extra_calls_per_block", pd.Series(dtype=float)), errors="coerce").dropna()
        if len(calls):
            blocks = f"{int(calls.min())}" + (f" to {int(calls.max())}" if calls.max() > calls.min() else "")
            text += f" Each timed measurement is a block of {blocks} calls, divided by the calls."
        if timed["peak_fraction"].notna().any():
            scope = _distinct(timed.get("extra_achieved_flops_scope", pd.Series(dtype=str)))
            ceiling = _distinct(timed.get("extra_peak_source", pd.Series(dtype=str)))
            text += (" Peak utilisation is achieved FLOP/s" + (f" ({'; '.join(scope)})" if scope else "")
                     + " over the device ceiling" + (f" ({'; '.join(ceiling)})" if ceiling else "") + ".")
        out.append(("Timing", text))
    if done["peak_mem_bytes"].notna().any():
        methods = _distinct(done.loc[done["peak_mem_bytes"].notna(), "peak_mem_method"])
        text = "Peak memory is per batch" + (": " + "; ".join(methods) if methods else "") + "."
        if done["saved_activation_bytes"].notna().any():
            text += " Saved activations are the bytes autograd kept for the backward pass of a training step."
        out.append(("Memory", text))
    if done["dice_mean"].notna().any():
        seeds = _distinct(done["quality_seeds"].dropna().astype(int).astype(str))
        out.append(("Quality", "Dice and IoU on the validation split, mean ± standard deviation over "
                               f"{'/'.join(seeds) or 'several'} training seeds; each seed trains the network "
                               "afresh, so the seeds are the repeats their verdicts come from. "
                               + QUALITY_METHOD))
    if "cfg_library" in done and done["cfg_library"].notna().any():
        out.append(("Other libraries' networks", _provenance(done)))
    text = ("Each variant is compared with the baseline at the same grid point: the same setting (mode, device, "
            "dtype, batch, memory format, threads) and the same size request of the experiment file (size rule and "
            "requested size), so a variant that needs another valid input size is paired with the baseline "
            "measured for the same request. ")
    if comparison.per_pixel:
        text += ("Compared outputs differ in size here, so latency, MACs and throughput are per output pixel "
                 "(--per-image shows them per image). ")
    text += stats.METHOD + ". " + " ".join(noise_line(s, *n) + "." for s, n in comparison.noise.items())
    out.append(("Comparison", text))
    return out


QUALITY_METHOD = (
    "Instance metrics: predicted objects are the 4-connected components of the predicted foreground, those "
    "smaller than the record's extra.min_object_px dropped as specks (where it is given); object F1 "
    "counts a hit at IoU >= 0.5, mAP averages TP / (TP + FP + FN) over IoU 0.5 to 0.95 (2018 Data Science "
    "Bowl), and the adapted Rand error (ISBI 2012, lower is better) grows with merged and split objects. "
    "Baselines on the same validation split: every pixel called an object (all foreground), and Gaussian "
    "smoothing plus one global threshold, both tuned on the training split only (tuned threshold).")


def _provenance(done: pd.DataFrame) -> str:
    """Where each network from another library came from, and why our design factors read n/a for it."""
    rows = done.dropna(subset=["cfg_library"]).drop_duplicates("variant")
    built = "; ".join(f"{r.variant} is {r.cfg_class} from {r.cfg_library} {r.cfg_library_version}"
                      for r in rows.itertuples())
    return (f"Built by their own libraries and measured by the same code as ours: {built}. Their keyword "
            "arguments are in each record's config; our design factors (padding, up-sampling, skip, norm, ...) "
            "do not describe them and read n/a.")


def _distinct(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values.dropna() if str(v).strip()))


# --- rendering -------------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;max-width:1240px;
margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:1.4em 0 .4em}.meta{color:#666;font-size:.9em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12px;line-height:1.3;margin:.4em 0 1em;font-variant-numeric:tabular-nums}
th,td{padding:3px 7px;border-bottom:1px solid #e4e4e4;text-align:right;vertical-align:top}
th{border-bottom:2px solid #999;background:#fafafa;white-space:normal;vertical-align:bottom;max-width:8.5em;
font-weight:600}
td{white-space:nowrap}td .ci{display:block;color:#666;font-size:10.5px}
td:first-child,th:first-child{text-align:left}tr:hover td{background:#f4f8ff}
.env td{text-align:left;white-space:normal;overflow-wrap:anywhere;max-width:34em}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em;margin-top:.3em}.notes li{color:#555}
dt{font-weight:600;margin-top:.6em}dd{margin-left:1.2em}
"""
SPLIT = 3  # a mode with more metrics than this is shown as one table per kind of metric (fits 1280 px)


def table_html(frame: pd.DataFrame) -> str:
    """A display table as HTML: headers may wrap; a Δ cell puts its interval or verdict on a second line."""
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
    body = []
    for values in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, values, strict=True):
            text = str(value)
            first, _, rest = text.partition(" ")
            if str(column).startswith("Δ") and rest:
                cells.append(f'<td>{esc(first)}<span class="ci">{esc(rest)}</span></td>')
            else:
                cells.append(f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def to_html(report: Report) -> str:
    """A single self-contained HTML page (CSS inline, figures as base64 PNG)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
        f'<p class="meta">{esc(_generated())}</p>',
        "<h2>Summary</h2><ul>" + "".join(f"<li>{_inline_html(s)}</li>" for s in report.summary) + "</ul>",
        "<h2>Environment</h2>",
        '<div class="scroll">' + report.environment.to_html(border=0, escape=True, classes="env") + "</div>",
        "<h2>Methodology</h2><dl>"
        + "".join(f"<dt>{esc(topic)}</dt><dd>{esc(text)}</dd>" for topic, text in report.methodology) + "</dl>",
        "<h2>Tables</h2>",
    ]
    for _, title, table in sections(report.comparison, split=SPLIT):
        parts.append(f"<h3>{esc(title)}</h3>")
        parts.append(table_html(table))
    parts.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in caption(report.comparison)) + "</ul>")
    for title, table in report.profiles:
        parts.append(f"<h3>{esc(title)}</h3>")
        parts.append(table_html(table))
    if report.runtimes is not None:
        parts.append("<h2>Runtimes</h2>")
        for title, table in report.runtimes.tables:
            parts += [f"<h3>{esc(title)}</h3>", table_html(table)]
        parts.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in report.runtimes.lines) + "</ul>")
        if report.runtimes.figure is not None:
            parts.append(_figure_html(report.runtimes.figure))
    if report.figures:
        parts.append("<h2>Figures</h2>")
    parts += [_figure_html(figure) for figure in report.figures]
    if report.counters:
        parts.append(f"<h2>FLOP counters</h2><p>{esc(counters_intro(report.counters))}</p>")
    for title, result in report.counters:
        parts.append(f"<h3>{esc(title)}</h3>")
        parts += [table_html(totals_table(result)), table_html(breakdown_table(result))]
    if report.notes:
        notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
        parts.append(f'<h2>Notes</h2><ul class="notes">{notes}</ul>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def to_markdown(report: Report, figures_relative_to: Path) -> str:
    """The same report in Markdown; figures are linked (PNG files next to it), not embedded."""
    lines = [f"# {report.title}", "", f"_{_generated()}_", "", "## Summary", ""]
    lines += [f"- {s}" for s in report.summary]
    lines += ["", "## Environment", "", report.environment.to_markdown(), "", "## Methodology", ""]
    lines += [f"- **{topic}.** {text}" for topic, text in report.methodology]
    lines += ["", "## Tables", ""]
    for _, title, table in sections(report.comparison, split=SPLIT):
        lines += [f"### {title}", "", table.to_markdown(index=False, disable_numparse=True), ""]
    lines += [f"- {n}" for n in caption(report.comparison)]
    for title, table in report.profiles:
        lines += ["", f"### {title}", "", table.to_markdown(index=False, disable_numparse=True)]
    if report.runtimes is not None:
        lines += ["", "## Runtimes", ""]
        for title, table in report.runtimes.tables:
            lines += [f"### {title}", "", table.to_markdown(index=False, disable_numparse=True), ""]
        lines += [f"- {n}" for n in report.runtimes.lines] + [""]
        if report.runtimes.figure is not None:
            lines += _figure_md(report.runtimes.figure, figures_relative_to)
    if report.figures:
        lines += ["", "## Figures", ""]
    for figure in report.figures:
        lines += _figure_md(figure, figures_relative_to)
    if report.counters:
        lines += ["", "## FLOP counters", "", counters_intro(report.counters), ""]
    for title, result in report.counters:
        lines += [markdown(result, title), ""]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _figure_html(figure: FigureFile) -> str:
    png = next(p for p in figure.paths if p.suffix == ".png")
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure id="{html.escape(figure.name)}"><h3>{html.escape(figure.title)}</h3>'
            f'<img alt="{html.escape(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")


def _figure_md(figure: FigureFile, relative_to: Path) -> list[str]:
    png = next(p for p in figure.paths if p.suffix == ".png")
    return [f"### {figure.title}", "", f"![{figure.title}]({png.relative_to(relative_to).as_posix()})", "",
            figure.caption, ""]


def _generated() -> str:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"generated {stamp} by unet-bench {unet_bench.__version__}"


def _inline_html(text: str) -> str:
    """Escape, then turn the summary's **bold** markers into <strong>."""
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
