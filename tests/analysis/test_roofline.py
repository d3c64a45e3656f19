"""The roofline tables and figure read a stored profile: which ceiling bounds a layer, how close it runs to
its roof, the per-kind sums, and what cannot be drawn."""

import pandas as pd

from unet_bench.analysis.results import flatten
from unet_bench.analysis.roofline import (
    bound,
    kind_frame,
    profile_from_row,
    roof_fraction,
    top_frame,
    unplaced,
    write_roofline,
)


def row(layer, kind, time_s, flops, nbytes, share):
    return {"layer": layer, "kind": kind, "time_s": time_s, "share": share, "flops": flops, "input_bytes": nbytes,
            "weight_bytes": 0, "output_bytes": 0, "bytes": nbytes,
            "intensity": flops / nbytes if flops and nbytes else None,
            "flops_per_s": flops / time_s if flops else None, "bytes_per_s": nbytes / time_s if nbytes else None}


# ceilings: 100 GFLOP/s and 10 GB/s, so the ridge is at 10 FLOP/B
PROFILE = {"step": "infer", "device": "cpu", "batch": 1, "steps": 2, "step_s": 0.9, "profiled_step_s": 1.0,
           "compute_ceiling": 100e9, "compute_source": "test", "bandwidth": 10e9, "bandwidth_source": "test",
           "time_source": "test", "flops_scope": "", "bytes_scope": "", "ops_s": 0.95,
           "rows": [row("stem.0", "conv", 0.5, 25e9, 1e9, 0.5),  # 25 FLOP/B: compute-bound, 50 of 100 GFLOP/s
                    row("stem.1", "norm", 0.3, 0.3e9, 1.5e9, 0.3),  # 0.2 FLOP/B: roof 2 GFLOP/s, runs at 1
                    row("stem.2", "activation", 0.15, 0, 0.3e9, 0.15),
                    row("(between ops)", "(between ops)", 0.05, 0, 0, 0.05)]}


def test_bound_and_fraction_of_the_roof():
    conv, norm, relu, _ = PROFILE["rows"]
    assert bound(conv, PROFILE) == "compute" and roof_fraction(conv, PROFILE) == 0.5
    assert bound(norm, PROFILE) == "memory" and roof_fraction(norm, PROFILE) == 0.5
    assert bound(relu, PROFILE) == "-" and roof_fraction(relu, PROFILE) is None


def test_tables():
    kinds = kind_frame(PROFILE).set_index("kind")
    assert list(kinds.index) == ["conv", "norm", "activation", "(between ops)"]
    assert kinds["share %"].sum() == 100
    assert kinds.loc["activation", "GB/s"] == 2 and pd.isna(kinds.loc["activation", "GFLOP/s"])
    top = top_frame(PROFILE, 2)
    assert list(top["layer"]) == ["stem.0", "stem.1"] and list(top["% of roof"]) == [50, 50]
    assert unplaced(PROFILE) == "Not on the figure (no counted FLOPs): activation 15.0%, (between ops) 5.0%."


def test_profile_survives_the_results_loader(tmp_path):
    """The loader flattens a record's extra; the profile is rebuilt from those columns as it was stored."""
    record = {"variant": "paper", "mode": "profile", "device": "cpu", "batch": 1, "input_size": 44,
              "extra": {"profile": {"infer": PROFILE}}}
    flat = pd.Series(flatten(record))
    assert profile_from_row(flat, "infer") == PROFILE
    assert profile_from_row(flat, "train") is None
    path = write_roofline(profile_from_row(flat, "infer"), "paper infer 44 px", tmp_path / "roofline.svg")
    assert "stem.0 50.0%" in path.read_text()
