"""Experiment files: every key checked up front with a one-line error, the grid expanded exactly."""

from pathlib import Path

import pytest

from unet_bench import BenchError, list_models
from unet_bench.suite.spec import load_spec

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def labels(spec) -> list[str]:
    return [p.case.label for p in spec.planned]


HEAD = 'name = "t"\ndescription = "a test"\n'


def test_flat_file_is_one_grid_in_run_order(tmp_path):
    spec = load_spec(write(tmp_path, HEAD + """
variants = ["paper", "padded"]
modes = ["counts", "infer"]
sizes = [188]
size_rule = "nearest-input"
batches = [1, 2]
set = {base_width = 4}
"""))
    assert spec.name == "t" and spec.description == "a test"
    assert labels(spec) == [
        "paper[base_width=4] counts cpu b1 188px fp32 #0",
        "paper[base_width=4] counts cpu b2 188px fp32 #0",
        "paper[base_width=4] infer cpu b1 188px fp32 #0",
        "paper[base_width=4] infer cpu b2 188px fp32 #0",
        "padded[base_width=4] counts cpu b1 192px fp32 #0",  # 188 is not a multiple of 16: 192 is nearest
        "padded[base_width=4] counts cpu b2 192px fp32 #0",
        "padded[base_width=4] infer cpu b1 192px fp32/vs paper #0",  # timed with paper in its process
        "padded[base_width=4] infer cpu b2 192px fp32/vs paper #0",
    ]
    assert all(p.cost_s > 0 and p.max_batch is None for p in spec.planned)


def test_size_rules_give_each_variant_its_fair_input(tmp_path):
    text = HEAD + 'variants = ["paper", "padded", "depth-3", "depth-5"]\nsizes = [388]\n'
    nearest = load_spec(write(tmp_path, text + 'size_rule = "nearest-output"'))
    assert [p.case.input_size for p in nearest.planned] == [572, 384, 476, 764]  # outputs 388, 384, 388, 388
    common = load_spec(write(tmp_path, text.replace('"padded", ', "") + 'size_rule = "common-output"'))
    assert [p.case.input_size for p in common.planned] == [572, 476, 764]
    near_in = load_spec(write(tmp_path, HEAD + 'variants = ["paper", "padded"]\nsizes = [570]\n'
                              'size_rule = "nearest-input"'))
    assert [p.case.input_size for p in near_in.planned] == [572, 576]


def test_grids_inherit_the_top_level_overrides_apply_in_order_and_duplicates_go(tmp_path):
    spec = load_spec(write(tmp_path, HEAD + """
modes = ["counts"]
set = {base_width = 8}
[overrides.depth-5]
base_width = 4
[[grid]]
variants = ["paper", "depth-5"]
sizes = [100]
size_rule = "nearest-output"
[[grid]]
variants = ["paper"]
sweep = {depth = [3, 4]}
sizes = [100]
size_rule = "nearest-output"
repeats = 2
"""))
    assert labels(spec) == [
        "paper[base_width=8] counts cpu b1 284px fp32 #0",
        "depth-5[base_width=4] counts cpu b1 476px fp32 #0",  # its override beats `set`
        "paper[base_width=8,depth=3] counts cpu b1 188px fp32 #0",
        # paper with depth=4 is the first grid's case: kept once
        "paper[base_width=8,depth=3] counts cpu b1 188px fp32 #1",  # repeats are the outer loop
        "paper[base_width=8] counts cpu b1 284px fp32 #1",
    ]
    assert spec.duplicates == 1
    assert spec.planned[0].case.overrides == (("base_width", 8),)


def test_globs_cuda_flags_and_device_override(tmp_path):
    text = HEAD + 'variants = ["*norm*"]\nsizes = [188]\ntf32 = [true, false]\ndevices = ["cuda"]\n'
    spec = load_spec(write(tmp_path, text))
    assert [p.case.variant for p in spec.planned[::2]] == ["batchnorm", "instancenorm", "groupnorm"]
    assert [p.case.tf32 for p in spec.planned[:2]] == [True, False]
    on_cpu = load_spec(write(tmp_path, text), device="cpu")  # TF32 means nothing on CPU: one case each
    assert len(on_cpu.planned) == 3 and on_cpu.duplicates == 3
    assert {p.case.device for p in on_cpu.planned} == {"cpu"}


def test_every_variant_glob_and_predicted_cost_scales(tmp_path):
    spec = load_spec(write(tmp_path, HEAD + 'variants = ["*"]\nmodes = ["counts", "infer", "train"]\n'
                           'sizes = [388]\nsize_rule = "nearest-output"'))
    assert [p.case.variant for p in spec.planned[::3]] == list_models()
    counts, infer, train = (p.cost_s for p in spec.planned[:3])
    assert counts < infer < train


def test_max_batch_search_entries(tmp_path):
    spec = load_spec(write(tmp_path, HEAD + """
variants = ["paper"]
modes = ["infer", "train"]
devices = ["cuda"]
dtypes = ["fp32", "bf16"]
max_batch_search = true
max_batch = 64
"""))
    assert [(p.case.mode, p.case.dtype, p.case.batch, p.max_batch) for p in spec.planned] == [
        ("infer", "fp32", 1, 64), ("infer", "bf16", 1, 64),
        ("train", "fp32", 1, 64), ("train", "bf16", 1, 64)]


P = 'variants = ["paper"]\n'  # a valid start, so that each case below has exactly one mistake
SEARCH = P + "max_batch_search = true\n"


@pytest.mark.parametrize(
    "body, message",
    [
        (P + "size = [572]", "x.toml: size: unknown key; valid keys are"),
        (P + "[[grid]]\nbatch = 2", "x.toml: grid[0].batch: unknown key; valid grid keys are"),
        (P + 'sizes = "big"', "x.toml: sizes: 'big' is not allowed; it must be an integer in [1, 65536]"),
        (P + "repeats = true", "x.toml: repeats: True is not allowed; it must be an integer in [1, 1000]"),
        (P + 'modes = ["inference"]',
         "x.toml: modes: 'inference' is not allowed; choose from 'counts', 'infer', 'train', 'quality', 'profile'"),
        (P + 'devices = ["tpu"]', "x.toml: devices: 'tpu' is not allowed; choose from 'cpu', 'cuda'"),
        (P + "sizes = []", "x.toml: sizes: an empty list is not allowed"),
        ('variants = ["unet"]', "x.toml: variants: 'unet' names no registered variant; valid variants are"),
        (P + "sizes = [570]",
         "x.toml: sizes: 570 is not a valid input size for paper: the nearest valid sizes are 556 and 572"),
        ('variants = ["padded"]\nsizes = [388]\nsize_rule = "common-output"',
         "x.toml: sizes: padded: no input gives an output of 388 px"),
        (P + 'size_rule = "fair"', "x.toml: size_rule: 'fair' is not allowed; choose from 'input'"),
        (P + "set = {width = 3}", "x.toml: set.width: unknown config field; valid fields are"),
        (P + 'set = {norm = "layer"}', "x.toml: set: norm='layer' is not valid; choose one of"),
        (P + "sweep = {depth = [3, 0]}", "x.toml: sweep: depth=0 is not valid"),
        (P + "[overrides.unet]\ndepth = 3", "x.toml: overrides.unet: unknown variant"),
        (SEARCH + 'modes = ["infer"]', "x.toml: max_batch_search: on cpu it needs cpu_memory_limit_gb"),
        (SEARCH + 'modes = ["infer"]\nbatches = [2]\ndevices = ["cuda"]',
         "x.toml: batches: not used with max_batch_search = true"),
        (SEARCH + 'devices = ["cuda"]', "x.toml: modes: 'counts' cannot be searched for a max batch"),
        (P + "cpu_memory_limit_gb = -1", "x.toml: cpu_memory_limit_gb: -1 is not allowed"),
        (P + "set = {depth = 40}", "x.toml: set: depth=40 is over the limit of 10 poolings"),
        (P + "set = {base_width = 100000}", "x.toml: set: base_width=100000 is over the limit of 16384 channels"),
        (P + "set = {depth = 9}", "x.toml: set: base_width=64 at depth=9 gives 32768 channels at the bottleneck, "
                                  "over the limit of 16384"),
        (P + "sizes = [1000000012]", "x.toml: sizes: 1000000012 is over the limit of 65536 (the largest input size"),
        (P + 'sizes = [65530]\nsize_rule = "nearest-output"',
         "x.toml: sizes: paper would take an input of 65708 px, over the limit of 65536"),
        (P + "min_run_time_s = inf", "x.toml: min_run_time_s: inf is not allowed; it must be a number in (0, 3600]"),
        (P + "min_run_time_s = nan", "x.toml: min_run_time_s: nan is not allowed"),
        (P + "cpu_memory_limit_gb = inf", "x.toml: cpu_memory_limit_gb: inf is not allowed; it must be a number in "
                                          "(0, 65536] GiB"),
        (P + "cpu_memory_limit_gb = 1e300", "x.toml: cpu_memory_limit_gb: 1e+300 is not allowed"),
        (P + "threads = [99999]", "x.toml: threads: 99999 is over the limit of"),
        (P + "batches = [100000]", "x.toml: batches: 100000 is over the limit of 65536 (the largest batch)"),
        ('modes = ["counts"]', "x.toml: variants: missing"),
        ('variants = ["paper"]\nmodes = ["quality"]\naugment = ["warp"]',
         "x.toml: augment: 'warp' is not allowed; choose from"),
        ('variants = ["paper"\n', "x.toml: not valid TOML:"),
    ],
)
def test_malformed_files_give_one_line_naming_file_and_key(tmp_path, body, message):
    with pytest.raises(BenchError) as error:
        load_spec(write(tmp_path, HEAD + body))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_name_and_description_are_required_and_name_is_a_folder(tmp_path):
    with pytest.raises(BenchError, match="x.toml: description: missing"):
        load_spec(write(tmp_path, 'name = "t"\nvariants = ["paper"]'))
    with pytest.raises(BenchError, match="x.toml: name: '../up' is not allowed"):
        load_spec(write(tmp_path, 'name = "../up"\ndescription = "d"\nvariants = ["paper"]'))
    with pytest.raises(BenchError, match="nope.toml: no such experiment file"):
        load_spec(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", ["default", "paper-tile", "ablations", "scaling", "gpu", "quality"])
def test_shipped_experiments_load(name):
    spec = load_spec(EXPERIMENTS / f"{name}.toml")
    assert spec.name == name and spec.planned


def test_default_experiment_covers_every_variant_infer_and_train_on_cpu():
    spec = load_spec(EXPERIMENTS / "default.toml")  # counts come with every infer and train record
    for mode in ("infer", "train"):
        assert sorted({p.case.variant for p in spec.planned if p.case.mode == mode}) == sorted(list_models("[!3]*"))
    assert {p.case.device for p in spec.planned} == {"cpu"}
    infer = {p.case.variant: p.case.input_size for p in spec.planned if p.case.mode == "infer"}
    assert infer["paper"] == 252 and infer["padded"] == 256 and infer["depth-5"] == 380  # its smallest valid input
    timed = [p.case for p in spec.planned if p.case.mode in ("infer", "train")]
    assert {c.repeat for c in timed} == {0, 1, 2}
    assert all(c.reference is not None for c in timed if c.variant != "paper")
    tile = load_spec(EXPERIMENTS / "paper-tile.toml")
    infer = {p.case.variant: p.case.input_size for p in tile.planned if p.case.mode == "infer"}
    assert infer["paper"] == infer["depth-5"] == 572 and infer["padded"] == 576  # the paper tile, or the nearest valid


def test_gpu_experiment_searches_the_max_batch_on_cuda():
    spec = load_spec(EXPERIMENTS / "gpu.toml")
    assert {p.case.device for p in spec.planned} == {"cuda"}
    assert any(p.max_batch for p in spec.planned)
    numerics = {(p.case.tf32, p.case.dtype) for p in spec.planned}
    assert numerics >= {(True, "fp32"), (False, "fp32"), (True, "bf16")}
    assert any(p.case.channels_last for p in spec.planned) and any(p.case.compile for p in spec.planned)


def test_errors_name_the_key_where_the_file_sets_it(tmp_path):
    text = HEAD + 'variants = ["paper"]\nsizes = [570]\n[[grid]]\nmodes = ["counts"]\n'
    text += "[[grid]]\nsizes = [572, 4]\n"
    with pytest.raises(BenchError, match=r"x.toml: sizes: 570 is not a valid input size"):
        load_spec(write(tmp_path, text.replace("[572, 4]", "[572]")))
    with pytest.raises(BenchError, match=r"x.toml: grid\[1\].sizes: 4 is not a valid input size"):
        load_spec(write(tmp_path, text.replace("sizes = [570]\n", "")))
    with pytest.raises(BenchError, match=r"x.toml: grid\[0\].variants: missing"):
        load_spec(write(tmp_path, HEAD + "[[grid]]\nmodes = [\"counts\"]\n"))


def test_a_grid_over_the_case_limit_is_refused_before_it_is_expanded(tmp_path):
    body = P + "sizes = [" + ", ".join(str(16 * k + 188) for k in range(100)) + "]\n"
    body += "batches = [" + ", ".join(str(b) for b in range(1, 101)) + "]\nrepeats = 1000\n"
    with pytest.raises(BenchError, match=r"x.toml: the grid holds 10,000,000 cases, over the limit of 10,000; "
                                         "split it into several experiment files"):
        load_spec(write(tmp_path, HEAD + body))


def test_quality_training_settings_expand_into_cases_and_only_there(tmp_path):
    spec = load_spec(write(tmp_path, HEAD + 'variants = ["padded"]\nmodes = ["quality", "counts"]\nsizes = [64]\n'
                                            'augment = ["flips", "elastic"]\nschedule = "cosine"\ntrain_images = 2\n'
                                            'elastic_sigma = 4\n'))
    quality = [p.case for p in spec.planned if p.case.mode == "quality"]
    # the warp's strength only where there is a warp
    assert [(c.augment, c.schedule, c.train_images, c.elastic_sigma) for c in quality] == [
        ("flips", "cosine", 2, 10.0), ("elastic", "cosine", 2, 4.0)]
    assert "augment elastic/lr cosine/2 training images/elastic sigma 4 px" in quality[1].label
    counts = {(p.case.augment, p.case.schedule, p.case.train_images, p.case.elastic_sigma)
              for p in spec.planned if p.case.mode == "counts"}
    assert counts == {("flips", "constant", None, 10.0)}  # nothing is trained there: the defaults, one case_id
    with pytest.raises(BenchError, match="x.toml: elastic_sigma: 0 is not allowed"):
        load_spec(write(tmp_path, HEAD + P + 'modes = ["quality"]\nelastic_sigma = 0\n'))
    with pytest.raises(BenchError, match="x.toml: train_images: 0 is not allowed"):
        load_spec(write(tmp_path, HEAD + P + 'modes = ["quality"]\ntrain_images = 0\n'))
