"""Paired timing and the control: A B B A blocks of a case and its reference in one process, a control block
after each pair, and the record fields they fill."""

import sys
import time

import numpy as np
import pytest

from unet_bench.measure import measure
from unet_bench.measure.timing import MIN_QUARTETS, time_call
from unet_bench.record import Case

TINY = (("base_width", 4), ("depth", 2))


def test_a_case_twice_as_slow_as_its_reference_pairs_at_two_in_a_b_b_a_order():
    order = []

    def case():
        order.append("A")
        time.sleep(0.02)

    def reference():
        order.append("B")
        time.sleep(0.01)

    def control():
        order.append("c")
        time.sleep(0.002)

    timing = time_call(case, 1, min_run_time=0.12, warmup_calls=2, control=control, reference=reference)
    warm = "ABAB"  # warm-ups alternate, so the first switch between the two is not timed
    assert "".join(order[:len(warm) + 1]) == warm + "c"  # ... then one control call sizes its blocks
    assert timing.warmup_calls == 2
    blocks = "".join(order[len(warm) + 1:])
    a, b, c = (f"{k}" * blocks_.calls_per_block for k, blocks_ in
               (("A", timing.latency), ("B", timing.reference), ("c", timing.control)))
    quartet, mirrored = a + b + c, b + a + c
    assert blocks.startswith(quartet + mirrored)  # A B (control) B A (control)
    assert timing.latency.n == timing.reference.n >= 2 * MIN_QUARTETS and timing.latency.n % 2 == 0
    assert timing.control.n == timing.latency.n  # one control block per pair
    assert timing.paired_ratio == pytest.approx(2.0, rel=0.25)
    assert len(timing.paired_ratios) == timing.latency.n
    assert timing.control_drift is not None and abs(timing.control_drift) < 1.0


@pytest.mark.skipif(sys.platform == "win32", reason="no getrusage on Windows")
def test_each_block_counts_the_page_faults_its_calls_took():
    # 64 MiB is above glibc's largest mmap threshold: every call maps fresh memory and touches all of it,
    # at least one fault per 2 MiB (one per huge page where the kernel gives them, else one per 4 KiB page)
    pages = 64 * 2**20 // (2 * 2**20)

    def touch_fresh_memory():
        np.ones(64 * 2**20 // 8).sum()

    timing = time_call(touch_fresh_memory, 1, min_run_time=0.05, warmup_calls=1,
                       reference=lambda: time.sleep(0.005))
    per_block = timing.latency.calls_per_block
    assert len(timing.latency.faults) == timing.latency.n
    assert all(f >= pages * per_block for f in timing.latency.faults)
    assert len(timing.reference.faults) == timing.reference.n
    assert all(f < pages for f in timing.reference.faults)  # sleeping touches (almost) nothing


def test_a_record_carries_its_control_and_its_pair():
    ref = Case("paper", TINY, mode="infer", input_size=60, min_run_time_s=0.05, threads=1, memory=False)
    case = Case("bilinear", TINY, mode="infer", input_size=60, min_run_time_s=0.05, threads=1, reference=ref)
    record = measure(case)
    assert record.get("paired_reference") == "paper" and record.get('paired_ref_ms_median') > 0
    assert record.get("paired_ratio") == pytest.approx(float(np.exp(np.log(record.get('paired_ratios')).mean())))
    assert record.get('control_ms_median') > 0 and len(record.get('control_block_ms')) == record.get('latency_n')
    per_control = record.get("latency_ms_median") / record.get("control_ms_median")
    assert record.get("latency_per_control") == pytest.approx(per_control)
    method = record.extra["control_method"]
    assert method.startswith("conv2d 3x3 64->64") and "1 threads" in method
    assert record.extra["paired_reference_case"]["variant"] == "paper"
    assert len(record.extra["block_minor_faults"]) == len(record.extra["paired_ref_block_minor_faults"])
    assert record.get('peak_mem_bytes') > 0  # the memory pass still runs, on the case's network alone
    alone = measure(ref)
    assert alone.get("paired_ratio") is None and alone.get("control_ms_median") > 0


def test_a_case_with_a_reference_round_trips_and_keeps_the_other_cases_ids():
    ref = Case("paper", TINY, mode="infer", input_size=60)
    case = Case("bilinear", TINY, mode="infer", input_size=60, reference=ref)
    assert Case.from_dict(case.to_dict()) == case and case.case_id != Case("bilinear", TINY, mode="infer",
                                                                               input_size=60).case_id
    assert "reference" not in ref.to_dict()  # an unpaired case's id is what it was before pairs existed
