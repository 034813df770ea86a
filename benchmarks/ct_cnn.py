"""Benchmark: how fast the 3D CT CNN of notebook 02 runs, and what its preprocessing costs.

For each setting - the ``narrow`` network on the smoke (20^3) and CPU full-mode (25^3) cubes,
and the paper's full-width network on its 50^3 cube at 1 mm - prints

* inference and training throughput (cubes/s, batch 16, best of ``--repeats`` steps after warm-up, float32; on CUDA also with mixed
  precision through :func:`mmsurv.training.autocast_for`),
* with the default memory layout and with ``channels_last_3d``,
* peak resident memory of the process,

and the time to cut one tumour cube from a virtual DICOM series and its RTSTRUCT.

Run: ``python3 -m uv run python benchmarks/ct_cnn.py [--device auto] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from torch import nn

from mmsurv.environment import environment_report, select_device
from mmsurv.models import ct_cnn
from mmsurv.radiology.ct_cubes import CubeSettings, index_ct_scans, tumour_cube
from mmsurv.training import autocast_for
from mmsurv.virtual import virtual_cohort_files

SETTINGS = [("narrow", 20, "smoke: 50 mm at 2.5 mm"), ("narrow", 25, "CPU full mode: 50 mm at 2 mm"), ("paper", 50, "the paper: 50 mm at 1 mm")]


def _throughput(model: nn.Module, side: int, device: str, *, train: bool, channels_last: bool, mixed: bool, repeats: int) -> float:
    batch = torch.rand(16, 1, side, side, side, device=device)
    labels = torch.randint(0, 2, (16,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
        batch = batch.contiguous(memory_format=torch.channels_last_3d)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    context = autocast_for(device) if mixed else torch.autocast("cpu", enabled=False)

    def step() -> None:
        with context:
            if train:
                model.train()
                optimiser.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(batch).float(), labels)
                loss.backward()
                optimiser.step()
            else:
                model.eval()
                with torch.no_grad():
                    model(batch)

    for _ in range(3):  # warm-up: memory, oneDNN / cuDNN kernel choice (the first calls are several times slower)
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 16 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = select_device(args.device)
    report = environment_report(device)
    print(f"device {device} | torch {report['packages'].get('torch')} | threads {torch.get_num_threads()}")

    cohort = virtual_cohort_files("lung_ct", size="smoke", progress=False)
    scan = index_ct_scans(cohort.tcia).iloc[0]
    for spacing in (2.5, 1.0):
        started = time.perf_counter()
        tumour_cube(scan["ct_folder"], scan["rtstruct"], CubeSettings(spacing_mm=spacing))
        print(f"cut one cube at {spacing} mm from a {cohort.info['size']} virtual scan: {time.perf_counter() - started:.2f} s")

    print(f"\n{'network':8s} {'cube':>5s}  {'layout':14s} {'precision':9s} {'infer/s':>8s} {'train/s':>8s}  setting")
    precisions = [False, True] if device.startswith("cuda") else [False]
    for architecture, side, label in SETTINGS:
        for channels_last in (False, True):
            for mixed in precisions:
                torch.manual_seed(0)
                model = ct_cnn(architecture).to(device)
                rates = [
                    _throughput(model, side, device, train=train, channels_last=channels_last, mixed=mixed, repeats=args.repeats)
                    for train in (False, True)
                ]
                layout = "channels_last" if channels_last else "default"
                print(f"{architecture:8s} {side:>4d}^3 {layout:14s} {'mixed' if mixed else 'float32':9s} {rates[0]:8.1f} {rates[1]:8.1f}  {label}")
    print(f"\npeak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
