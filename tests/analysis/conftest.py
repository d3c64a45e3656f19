"""A results directory made by a real tiny `unet-bench run`, shared by the analysis tests.

Every number the tests check was measured and written by the runner; expected values are recomputed from
those records. Tests that need what a run cannot be made to produce (controlled spreads, quality seeds,
another machine's load) build it on top of these records and say so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.analysis.tiny import TINY_EXPERIMENT
from unet_bench.analysis.results import load
from unet_bench.cli import main


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory) -> Path:
    """A results directory written by a real `unet-bench run` of `TINY_EXPERIMENT`."""
    root = tmp_path_factory.mktemp("results")
    (root / "tiny.toml").write_text(TINY_EXPERIMENT)
    assert main(["run", str(root / "tiny.toml"), "--out", str(root / "tiny")]) == 0
    return root / "tiny"


@pytest.fixture(scope="session")
def frame(tiny_results) -> pd.DataFrame:
    return load([tiny_results])
