"""Figures, the report and the analysis commands, on the tiny run (and on constructed quality records
where a quality run would be too slow for a unit test)."""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image
from scipy import stats as sstats

from tests.analysis.tiny import records, repeated, row, write
from unet_bench.analysis import stats
from unet_bench.analysis.axes import number, plain_numbers
from unet_bench.analysis.compare import compare
from unet_bench.analysis.findings import summarize
from unet_bench.analysis.plots import make_figures
from unet_bench.analysis.results import load
from unet_bench.analysis.tables import sections
from unet_bench.cli import main

# --- figures and report ----------------------------------------------------------------------------------


def test_figures_are_written_non_empty_in_png_and_svg(frame, tmp_path):
    figures = make_figures(frame, tmp_path)
    names = {f.name for f in figures}
    assert {"cost", "pareto_latency_macs", "pareto_memory_latency", "scaling_size", "scaling_batch",
            "throughput"} <= names
    assert "quality_pareto" not in names  # no quality measured: skipped, not drawn empty
    for figure in figures:
        png, svg = figure.paths
        image = np.asarray(Image.open(png).convert("L"))
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert (image < 128).mean() > 0.005  # ink on the page
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_report_is_self_contained_and_says_how_it_was_measured(tiny_results, frame, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_results, run)
    assert main(["report", str(run)]) == 0  # default --out: a report folder inside the results
    html_path, md_path = run / "report" / "report.html", run / "report" / "report.md"
    assert (run / "report" / "figures" / "cost.svg").is_file()
    assert capsys.readouterr().out.split() == ["wrote", str(html_path), "wrote", str(md_path)]
    page = _Page()
    page.feed(html_path.read_text())
    text = " ".join(page.text)
    for heading in ("Summary", "Environment", "Methodology", "Tables", "Figures"):
        assert heading in text
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) >= 6 and all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert not [a for tag, a in page.tags if tag in ("link", "script") or a.get("href", "").startswith("http")]
    assert "FLOPs = 2 × MACs" in text and "transposed convolutions" in text
    assert row(frame, "paper", "infer")["peak_mem_method"] in text  # read from the records
    assert row(frame, "paper", "counts")["env_cpu"] in text
    assert "padded" in text and "bilinear" in text and "ref" in text
    methodology = text[text.index("Methodology"):text.index("Tables")]
    assert "same grid point" in methodology and "per output pixel" in methodology and "Welch" in methodology
    assert "1 repeat per case, too few to tell any change from noise" in text
    tables = re.findall(r"<table>(.*?)</table>", html_path.read_text(), re.S)
    assert len(tables) >= 2 and all(t.count("<th>") <= 12 for t in tables)  # narrow enough for 1280 px
    assert '%<span class="ci">no verdict (1 paired repeat)</span></td>' in html_path.read_text()  # on a line of its own
    markdown = md_path.read_text()
    assert "## Methodology" in markdown and "| variant" in markdown
    assert "latency per output Mpx (ms)" in markdown
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
        assert (md_path.parent / link).is_file()
    assert main(["report", str(run), "--per-image", "--out", str(tmp_path / "per-image")]) == 0
    assert "latency (ms)" in (tmp_path / "per-image" / "report.md").read_text()


def test_wide_tables_are_split_per_kind_of_metric(frame):
    comparison = compare(frame, metrics=["params", "peak_mem_bytes", "latency_ms_median", "peak_fraction"])
    whole = {title: table for _, title, table in sections(comparison)}
    parts = {title: table for _, title, table in sections(comparison, split=2)}
    infer = next(t for t in whole if t.startswith("mode: infer"))
    assert [t.removeprefix(infer) for t in parts if t.startswith(infer)] == [" · memory", " · time"]
    memory, time = parts[infer + " · memory"], parts[infer + " · time"]
    assert list(memory.columns[-2:]) == ["peak memory (MiB)", "Δ peak memory"]
    assert list(time.columns[-4:]) == ["latency (ms)", "Δ latency", "peak utilisation (%)", "Δ peak utilisation"]
    assert memory["variant"].tolist() == time["variant"].tolist() == whole[infer]["variant"].tolist()


def test_cli_compare(tiny_results, capsys):
    assert main(["compare", str(tiny_results), "--metrics", "params,latency_ms_median", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "parameters (M)" in out and "latency (ms)" in out and "MACs (G)" not in out


def run_cli(args: list[str]) -> int:
    """The CLI's exit status, whether it returns it or argparse exits."""
    try:
        return main(args)
    except SystemExit as exit:
        return exit.code


@pytest.mark.parametrize("args, message", [
    (["compare", "{missing}"], "does not exist"),
    (["compare", "{dir}", "--baseline", "unet"], "unknown baseline 'unet'; valid baselines are"),
    (["compare", "{dir}", "--metrics", "speed"], "unknown metric 'speed'; metrics measured in these results:"),
    (["compare", "{dir}", "--format", "pdf"], "invalid choice: 'pdf'"),
    (["report", "{missing}"], "does not exist"),
])
def test_cli_errors_are_one_line_with_exit_2(tiny_results, tmp_path, capsys, args, message):
    assert run_cli([a.format(dir=tiny_results, missing=tmp_path / "missing") for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def quality_records(written: list[dict], seeds: dict[str, list[float]], per_seed: bool = True) -> list[dict]:
    """Quality records on top of the counts records, with these Dice values per seed."""
    out = []
    for r in written:
        if r["mode"] == "counts":
            dice = seeds[r["variant"]]
            extra = {**r["extra"], "dice_per_seed": dice} if per_seed else r["extra"]
            out.append({**r, "mode": "quality", "case_id": r["case_id"] + "q", "dice_mean": float(np.mean(dice)),
                        "dice_std": float(np.std(dice, ddof=1)), "quality_seeds": len(dice), "extra": extra})
    return out


def test_quality_gets_a_verdict_from_its_seeds_and_a_pareto_figure(tiny_results, tmp_path):
    # Constructed Dice values on top of the real cost records: a quality run trains networks for minutes.
    seeds = {"paper": [0.80, 0.81, 0.82], "padded": [0.85, 0.86, 0.84], "bilinear": [0.78, 0.82, 0.77]}
    written = records(tiny_results)
    folder = write(tmp_path / "quality", written + quality_records(written, seeds))
    figures = {f.name: f for f in make_figures(load([folder]), tmp_path / "figures", names=["quality_pareto"])}
    assert list(figures) == ["quality_pareto"]
    width, height = Image.open(figures["quality_pareto"].paths[0]).size
    assert width > 1.8 * height  # two panels: Dice vs latency and Dice vs MACs
    comparison = compare(load([folder]), metrics=["dice_mean"])
    padded, bilinear = row(comparison.table, "padded", "quality", input_size=20), \
        row(comparison.table, "bilinear", "quality")
    assert padded["dice_mean_rel"] == pytest.approx(0.85 / 0.81 - 1)
    assert (padded["dice_mean_low"], padded["dice_mean_high"]) == pytest.approx((0.84, 0.86))  # mean ± std
    assert comparison.families["dice_mean"].real == 1 and padded["dice_mean_level"] == pytest.approx(0.975)
    welch = sstats.ttest_ind(seeds["padded"], seeds["paper"], equal_var=False).confidence_interval(0.975)
    assert padded["dice_mean_verdict"] == stats.REAL and bilinear["dice_mean_verdict"] == stats.NOISE
    # the ratio's interval (Fieller's) holds the difference's over the reference mean, a little wider
    low, high = padded["dice_mean_rel_low"], padded["dice_mean_rel_high"]
    assert low < welch.low / 0.81 < welch.high / 0.81 < high
    assert (low, high) == pytest.approx((welch.low / 0.81, welch.high / 0.81), abs=0.003)
    # Records that give only mean, std and seed count reach the same verdict and interval.
    summaries = write(tmp_path / "summaries", written + quality_records(written, seeds, per_seed=False))
    again = row(compare(load([summaries]), metrics=["dice_mean"]).table, "padded", "quality", input_size=20)
    assert again["dice_mean_rel_low"] == pytest.approx(padded["dice_mean_rel_low"])
    summary = summarize(comparison)
    assert any(line.startswith("**padded** against paper: Dice +4.9 % [") for line in summary)
    assert "**bilinear** against paper: no change beyond the noise of these runs." in summary


def test_summary_states_real_effects_with_their_intervals_and_leaves_out_noise(tiny_results, frame, tmp_path):
    once = summarize(compare(frame))  # one repeat a case: counts are exact, timings get no verdict
    assert once[0] == f"{tiny_results}: 1 repeat per case, too few to tell any change from noise (verdicts need 3)"
    bilinear = next(line for line in once if line.startswith("**bilinear**"))
    rel = row(frame, "bilinear", "counts")["params"] / row(frame, "paper", "counts")["params"] - 1
    assert f"parameters {rel * 100:+.1f} % (exact)" in bilinear and "latency" not in bilinear
    ending = "changes have no verdict (1 paired repeat); verdicts need 3 repeats a side."
    assert any(line.endswith(ending) for line in once)
    # Constructed repeats on real records: padded is slower per image at batch 1 and unchanged at batch 2.
    written = records(tiny_results)
    paper, padded = (next(r for r in written if r["variant"] == v and r["size_rule"] == "common-output"
                          and r["mode"] == "infer") for v in ("paper", "padded"))
    runs = repeated(paper, [1.00, 1.03, 0.98]) + repeated(padded, [1.40, 1.46, 1.43])
    runs += repeated({**paper, "batch": 2}, [2.0, 2.1, 1.9]) + repeated({**padded, "batch": 2}, [2.02, 1.94, 2.1])
    comparison = compare(load([write(tmp_path, runs)]))
    lines = summarize(comparison)
    assert lines[0].startswith(f"{tmp_path}: latency changes under ") and "(3 repeats per case)" in lines[0]
    stated = next(line for line in lines if line.startswith("**padded**"))
    effect = r"latency \+4\d\.\d % \[\+\d+\.\d, \+\d+\.\d\] \(infer, 20→20 px; real in 1 of 2 settings\)"
    assert re.search(effect, stated)
    assert "1 of 2 latency changes are real; the rest are within noise and not stated above." in lines


def test_axis_numbers_are_written_in_full():
    assert [number(v) for v in (1770, 0.25, 1.5e6, 0.30000000000000004, -12345.5, 0)] == \
        ["1,770", "0.25", "1,500,000", "0.3", "-12,345.5", "0"]
    assert number(31.030658, 3) == "31" and number(0.0123456, 3) == "0.0123"
    figure = Figure()
    ax = figure.subplots(1, 3)
    ax[0].plot([1000, 3000], [1770, 1780])
    ax[1].loglog([10, 20000], [1, 5000])
    ax[2].barh([0, 1], [1500, 2500])
    ax[2].set_yticks([0, 1], ["paper", "padded"])
    for axes in ax:
        plain_numbers(axes)
    figure.canvas.draw()
    labels = [t.get_text() for a in ax for t in a.get_xticklabels() + a.get_yticklabels() if t.get_text()]
    assert "1,770" in labels and "2,000" in labels and "10,000" in labels
    assert [t.get_text() for t in ax[2].get_yticklabels()] == ["paper", "padded"]  # named ticks kept
    assert not [t for t in labels if re.search(r"\d[eE][+-]?\d|\^|\$", t)]  # no 1.77e+03, no 10^3
    assert all(a.yaxis.get_offset_text().get_text() == "" for a in ax)  # no '+1.77e3' above the axis


# --- where the report cannot be written ------------------------------------------------------------------

def _out(tmp_path, state: str):
    """``--out`` in ``state``, and a file outside it that a link in it points at."""
    precious = tmp_path / "precious.txt"
    precious.write_text("not the report's")
    out = tmp_path / "out"
    if state in ("a file", "under a file"):
        out.write_text("a file")
        return (out / "sub" if state == "under a file" else out), precious
    if state == "in /proc":
        return Path("/proc/unet-bench-report"), precious
    out.mkdir()
    if state == "figures a link":
        (tmp_path / "elsewhere").mkdir()
        (out / "figures").symlink_to(tmp_path / "elsewhere")
        return out, precious
    (out / "figures").mkdir()
    if state == "report.html a link":
        (out / "report.html").symlink_to(precious)
    elif state == "a figure a link":
        (out / "figures" / "cost.png").symlink_to(precious)
    elif state == "report.md a folder":
        (out / "report.md").mkdir()
    elif state == "read-only":
        out.chmod(0o500)
    return out, precious


@pytest.mark.parametrize("state, message", [
    ("a file", "out is a file, not a folder; give a folder (it is created if missing)"),
    ("under a file", "out/sub: cannot create the report folder: Not a directory"),
    ("in /proc", "--out: cannot write into /proc: No such file or directory; name a folder you can write to"),
    ("figures a link", "out/figures is a symbolic link; the report never writes through a link"),
    ("report.html a link", "out/report.html is a symbolic link; the report never writes through a link"),
    ("a figure a link", "out/figures/cost.png is a symbolic link; the report never writes through a link"),
    ("report.md a folder", "out/report.md is not a regular file;"),
    pytest.param("read-only", "out is not writable; give --out a folder you can write to",
                 marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")),
])
def test_report_out_that_cannot_be_written_is_one_line_before_drawing(tiny_results, tmp_path, capsys, state,
                                                                      message):
    out, precious = _out(tmp_path, state)
    assert main(["report", str(tiny_results), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unet-bench report: error: ") and err.count("\n") == 1 and message in err
    assert precious.read_text() == "not the report's"
    drawn = [p for p in tmp_path.rglob("*") if p.suffix in (".png", ".svg", ".html") and not p.is_symlink()]
    assert drawn == []  # refused before any figure was drawn
