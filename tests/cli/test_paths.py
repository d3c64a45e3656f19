"""Every file a command writes follows one rule (`unet_bench.cli.paths`), checked before any work: never
through a link, a folder that is a link followed and said so, ``DIR/`` a folder, a folder that cannot take a
file refused in one line; a write that fails after a measurement keeps the measurement and says where."""

import errno
import os

import pytest

from unet_bench.cli import main, paths
from unet_bench.errors import BenchError

TINY = ["--set", "base_width=2", "--set", "depth=2", "--size", "44", "--threads", "1", "--min-run-time", "0.05",
        "--steps", "1"]


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_file_is_never_written_through_a_link_and_a_folder_link_is_said(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    (tmp_path / "elsewhere.png").write_bytes(b"precious")
    (tmp_path / "real" / "fig.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(BenchError, match="symbolic link; unet-bench never writes through a link"):
        paths.output_file(str(tmp_path / "real" / "fig.png"), "--plot", (".png",), "roofline.png")
    (tmp_path / "via").symlink_to(tmp_path / "real")
    assert paths.output_file(str(tmp_path / "via") + "/", "--plot", (".png",), "roofline.png") == \
        tmp_path / "real" / "roofline.png"
    assert "is a symbolic link; writing into" in capsys.readouterr().err
    assert (tmp_path / "elsewhere.png").read_bytes() == b"precious"
    assert list((tmp_path / "real").iterdir()) == [tmp_path / "real" / "fig.png"]  # the probe left nothing


def test_a_trailing_slash_is_a_folder_and_a_missing_folder_is_refused(tmp_path):
    assert paths.output_file(f"{tmp_path}/", "--plot", (".png",), "roofline.png") == tmp_path / "roofline.png"
    assert paths.output_file(str(tmp_path), "--plot", (".png",), "roofline.png") == tmp_path / "roofline.png"
    with pytest.raises(BenchError, match="folder .*nope does not exist"):
        paths.output_file(f"{tmp_path}/nope/", "--plot", (".png",), "roofline.png")
    (tmp_path / "fig.png").mkdir()
    (tmp_path / "fig.png" / "roofline.png").mkdir()
    with pytest.raises(BenchError, match="not a regular file"):
        paths.output_file(f"{tmp_path}/fig.png/", "--plot", (".png",), "roofline.png")


def test_a_folder_that_takes_no_file_is_refused(tmp_path):
    with pytest.raises(BenchError, match="cannot write into /proc"):
        paths.output_file("/proc/x.png", "--out", (".png",), "h.png")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root: permission bits do not stop it; the probe is what tells
            pytest.skip("this user writes into read-only folders")
        with pytest.raises(BenchError, match="cannot write into"):
            paths.output_file(str(locked / "x.png"), "--out", (".png",), "h.png")
    finally:
        locked.chmod(0o700)


def test_long_names_are_shortened():
    text = paths.shorten("x" * 20_000)
    assert len(text) < 250 and "characters" in text


@pytest.mark.parametrize("plot, message", [
    ("/proc/roofline.png", "cannot write into /proc"),
    ("/no/such/folder/roofline.png", "does not exist"),
    ("/no/such/folder/", "does not exist"),
    ("roofline.txt", "name a .png or .svg file"),
])
def test_profile_refuses_its_plot_before_measuring(monkeypatch, capsys, plot, message):
    import unet_bench.measure.profile_case as profiling

    monkeypatch.setattr(profiling, "measure_profile", lambda *a, **k: pytest.fail("measured"))
    assert main(["profile", "paper", *TINY, "--plot", plot]) == 2
    captured = capsys.readouterr()
    assert message in one_line(captured.err) and not captured.out


def test_a_failed_plot_write_keeps_the_profile(monkeypatch, tmp_path, capsys, one_thread):
    import unet_bench.cli.profile as command

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(command, "write_plot", full)
    assert main(["profile", "paper", *TINY, "--plot", f"{tmp_path}/"]) == 1
    captured = capsys.readouterr()
    assert "by kind of op" in captured.out  # the measurement is out
    err = captured.err.splitlines()[-1]
    assert "No space left on device" in err and "the profile is printed above" in err
    assert not (tmp_path / "roofline.png").exists()


def test_history_and_report_refuse_their_output_before_loading(tmp_path, capsys):
    missing = str(tmp_path / "no-results")
    assert main(["history", missing, "--out", "/proc/h.png"]) == 2
    assert "cannot write into /proc" in one_line(capsys.readouterr().err)
    assert main(["report", missing, "--out", "/proc/report"]) == 2
    assert "cannot write into /proc" in one_line(capsys.readouterr().err)
    (tmp_path / "a-file").write_text("")
    assert main(["report", missing, "--out", str(tmp_path / "a-file")]) == 2
    assert "is a file, not a folder" in one_line(capsys.readouterr().err)


def test_history_names_its_default_figure_before_writing_it(tmp_path, monkeypatch, capsys):
    import unet_bench.analysis.history as module

    monkeypatch.chdir(tmp_path)
    assert main(["history", "no-results"]) == 2  # the results do not exist: refused in one line
    assert one_line(capsys.readouterr().err).startswith("unet-bench history: error:")

    def draw(result, path):
        assert capsys.readouterr().err.endswith(f"note: the figure goes to {tmp_path / 'history.png'} "
                                                "(no --out given)\n")
        return path

    monkeypatch.setattr("unet_bench.analysis.results.load", lambda sources: module.pd.DataFrame())
    monkeypatch.setattr(module, "history", lambda *args: module.History("latency_ms_median", "commit", [],
                                                                           module.pd.DataFrame(), []))
    monkeypatch.setattr(module, "history_text", lambda result: "")
    monkeypatch.setattr(module, "plot_history", draw)
    assert main(["history", "no-results"]) == 0
