"""A plan's cost grows with its cases, its counting with its networks: each network and size is built and
counted once however many cases share it (modes, repeats, options), and the pairing of each case with its
baseline is found in one pass. Counted calls, not seconds (the speed figure is in tests/benchmarks)."""

import pytest
import torch

from unet_bench.errors import BenchError
from unet_bench.measure.counts import flop_counter_counts
from unet_bench.models import geometry, get_config, list_models
from unet_bench.models.registry import build_network
from unet_bench.suite import cost, grid
from unet_bench.suite.spec import MAX_NETWORKS, load_spec


def sweep_file(tmp_path, values: int, repeats: int = 3) -> str:
    path = tmp_path / "x.toml"
    widths = ", ".join(str(w) for w in range(2, 2 * values + 2, 2))
    path.write_text(f'name = "x"\ndescription = "d"\nvariants = ["paper", "bilinear"]\nsizes = [188]\n'
                    f'modes = ["counts", "infer", "train"]\nrepeats = {repeats}\nchannels_last = [false, true]\n'
                    f'sweep = {{ base_width = [{widths}] }}\n')
    return str(path)


def test_each_network_is_counted_once_however_many_cases_share_it(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(cost, "conv_flops", lambda model, shape: built.append(shape) or 10**9)
    cost.forward_flops.cache_clear()
    spec = load_spec(sweep_file(tmp_path, 200))
    assert len(spec.planned) == 2 * 200 * 3 * 3 * 2  # variants x sweep x modes x repeats x layouts: 7,200 cases
    assert len(built) == 2 * 200  # one per network and size: not per case, nor per repeat
    cost.forward_flops.cache_clear()


class Overrides(tuple):
    """A case's overrides that count how often they are compared."""

    compared = 0

    def __eq__(self, other):
        Overrides.compared += 1
        return tuple.__eq__(self, other)

    __hash__ = tuple.__hash__


def pairing_comparisons(points: int) -> int:
    shapes = [(variant, Overrides((("base_width", 2 * i),)), None, (188, 188), 188)
              for variant in ("paper", "bilinear") for i in range(1, points + 1)]
    fake = type("G", (), {"__getitem__": lambda self, key: {"baseline": "paper", "paired": True}[key]})()
    Overrides.compared = 0
    found = grid.Grid.reference_shapes(fake, shapes, False)
    assert found[shapes[points][0], shapes[points][1], 188][0] == shapes[0][1]  # each point its own baseline
    return Overrides.compared


def test_pairing_with_the_baseline_is_one_look_up_per_case():
    assert pairing_comparisons(800) <= 8 * max(pairing_comparisons(100), 1) * 1.1  # 8x the points: 8x, not 64x


def test_a_plan_over_the_network_limit_is_refused_with_its_size(tmp_path):
    path = tmp_path / "x.toml"
    widths = ", ".join(str(w) for w in range(2, 2002, 2))
    path.write_text(f'name = "x"\ndescription = "d"\nvariants = ["paper", "bilinear", "nearest"]\n'
                    f'sweep = {{ base_width = [{widths}] }}\n')
    with pytest.raises(BenchError, match=f"the grid holds 3,000 networks and sizes .* over the limit of "
                                         f"{MAX_NETWORKS:,} one plan counts"):
        load_spec(path)


@pytest.mark.parametrize("name", list_models())
def test_the_pricing_count_is_torchs_count(name):
    cfg = get_config(name)
    size = geometry.nearest_valid_sizes(cfg, 1)[1]
    with torch.device("meta"):
        model = build_network(cfg).to("meta")
    shape = (1, cfg.in_channels, *geometry.spatial_shape(cfg, size))
    assert cost.forward_flops(cfg, size) == sum(flop_counter_counts(model, shape, train=False).values())
