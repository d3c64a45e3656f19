"""`unet-bench doctor`: is this machine fit to measure on (`unet_bench.measure.doctor`), in a few lines or
as JSON; ``--smoke`` also runs one tiny case of every mode on every device here."""

from __future__ import annotations

import argparse
import json

from unet_bench.suite.checks import as_argument, number


def _lines(facts: dict) -> list[str]:
    load = "n/a" if facts["loadavg"] is None else f"{facts['loadavg']:.2f}"
    steal = "n/a" if facts["cpu_steal"] is None else f"{facts['cpu_steal']:.1%}"
    lines = [f"cpu        {facts['cpu']}, {facts['cpu_cores']} cores; governor {facts['governor']}, turbo "
             f"{facts['turbo']}; torch threads {facts['torch_threads']}",
             f"load       1-minute load average {load} on {facts['cpu_cores']} cores; CPU steal {steal}",
             f"torch      {facts['torch']}; CUDA {facts['cuda'] or 'none'}, cuDNN {facts['cudnn'] or 'none'}; GPUs: "
             f"{', '.join(facts['gpus']) or 'none'}",
             f"speed env  {', '.join(f'{k}={v}' for k, v in facts['speed_env'].items()) or 'nothing set'}",
             f"memory     transparent huge pages {facts['transparent_hugepages']}"
             + (" (a training step's buffers come in 4 KiB pages: tens of thousands of page faults a step)"
                if facts["transparent_hugepages"] in ("madvise", "never") else "")]
    for extra, modules in facts["extras"].items():
        have = [m for m, ok in modules.items() if ok]
        lines.append(f"extra      {extra}: {', '.join(have) if have else 'not installed'}"
                     + (f" (missing {', '.join(m for m, ok in modules.items() if not ok)})" if 0 < len(have) <
                        len(modules) else ""))
    aa = facts["control_aa"]
    if aa:
        lines.append(f"control    {facts['control']}")
        lines.append(f"A/A        {aa['blocks']} blocks in {aa['seconds']:g} s: spread (IQR/median) "
                     f"{aa['block_spread']:.1%}; A B B A quartets sd {aa['quartet_sd']:.2%}: a paired row of 3 "
                     f"processes could tell changes over about {aa['paired_mde']:.1%} now")
    if facts["loadavg"] is not None and facts["loadavg"] > 0.5 * facts["cpu_cores"]:
        lines.append("verdict    busy: other work is running; pair what you compare (suites do) or use 'unet-bench ab'")
    return lines


def cmd_doctor(args: argparse.Namespace) -> int:
    import torch

    from unet_bench.measure.doctor import smoke, system

    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    facts = system("cpu", args.seconds)
    if args.smoke:
        facts["smoke"] = smoke(devices)
    if args.json:
        print(json.dumps(facts, default=str))
        return 0 if all(s["status"] == "ok" for s in facts.get("smoke", [])) else 1
    print("\n".join(_lines(facts)))
    for result in facts.get("smoke", []):
        why = f"  {result['message']}" if result["status"] != "ok" else ""
        print(f"smoke      {result['mode']:<10} {result['device']:<5} {result['status']:<7}"
              f"{result['seconds']:6.1f} s{why}")
    return 0 if all(s["status"] == "ok" for s in facts.get("smoke", [])) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    doctor = subparsers.add_parser("doctor", help="is this machine fit to measure on: load, clocks, builds, "
                                   "a 10-second A/A of the control")
    doctor.add_argument("--json", action="store_true", help="one JSON object")
    doctor.add_argument("--smoke", action="store_true",
                        help="also run one tiny case of every mode on every device here (under two minutes)")
    doctor.add_argument("--seconds", type=as_argument(number(600, "seconds"), float), default=10.0, metavar="S",
                        help="length of the control's A/A (default 10; 0 skips it)")
    doctor.set_defaults(func=cmd_doctor)
