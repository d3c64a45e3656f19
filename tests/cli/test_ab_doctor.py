"""`unet-bench doctor` and the refusals of `unet-bench ab` (its alternated runs: tests/analysis/test_calibration.py)."""

import json
import sys

from unet_bench.cli import main


def test_doctor_says_what_a_measurement_here_is_up_against(capsys):
    assert main(["doctor", "--json", "--seconds", "0.5"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["cpu_cores"] >= 1 and facts["torch"].startswith("2.")
    assert set(facts["extras"]) == {"external", "counters", "cluster", "energy", "runtimes"}
    aa = facts["control_aa"]
    assert aa["blocks"] >= 8 and aa["blocks"] % 4 == 0 and aa["quartet_sd"] >= 0 and aa["paired_mde"] >= 0
    assert facts["control"].startswith("conv2d 3x3")
    assert facts["transparent_hugepages"] in ("always", "madvise", "never", "not readable")
    assert main(["doctor", "--seconds", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "A/A" in text and "control" in text and text.startswith("cpu ")
    assert f"transparent huge pages {facts['transparent_hugepages']}" in text


def test_ab_refuses_what_is_not_an_environment_in_one_line(tmp_path, capsys):
    spec = tmp_path / "x.toml"
    spec.write_text('name = "x"\ndescription = "x"\nvariants = ["paper"]\nmodes = ["infer"]\n')
    assert main(["ab", str(spec), "--old", str(tmp_path), "--new", sys.executable]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a checkout of unet-bench" in err
    assert main(["ab", str(spec), "--old", str(tmp_path / "missing"), "--new", sys.executable]) == 2
    assert "neither a checkout of unet-bench nor a Python interpreter" in capsys.readouterr().err
    counts = tmp_path / "c.toml"
    counts.write_text('name = "c"\ndescription = "c"\nvariants = ["paper"]\nmodes = ["counts"]\n')
    assert main(["ab", str(counts), "--old", sys.executable, "--new", sys.executable,
                 "--out", str(tmp_path / "out")]) == 2
    assert "has no infer or train case" in capsys.readouterr().err
