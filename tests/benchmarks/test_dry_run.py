"""How long `unet-bench run FILE --dry-run` takes for a plan of thousands of cases: a sweep of 300 widths on
two variants, three modes and two layouts: 3,600 cases and 600 networks. Prints cases per second and
networks per second.

Run: ``PYTHONPATH=. python -m pytest tests/benchmarks/test_dry_run.py -s``.
"""

import contextlib
import io
import time

from unet_bench.cli import main
from unet_bench.suite import cost


def test_dry_run_of_thousands_of_cases(tmp_path):
    widths = ", ".join(str(w) for w in range(2, 602, 2))
    path = tmp_path / "x.toml"
    path.write_text(f'name = "x"\ndescription = "d"\nvariants = ["paper", "bilinear"]\nsizes = [188]\n'
                    f'modes = ["counts", "infer", "train"]\nrepeats = 1\nchannels_last = [false, true]\n'
                    f'sweep = {{ base_width = [{widths}] }}\n')
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(path), "--dry-run"]) == 0  # imports and warm-up
    cost.forward_flops.cache_clear()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", str(path), "--dry-run"]) == 0
    seconds = time.perf_counter() - start
    print(f"\ndry run: 3,600 cases, 600 networks in {seconds:.1f} s ({3600 / seconds:,.0f} cases/s, "
          f"{600 / seconds:,.0f} networks/s)")
