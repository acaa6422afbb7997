"""Partial FC against the full margin head: time per training step of the head and peak memory, at many
identities (512-d embeddings, ArcFace, SGD with momentum on the head, batch 128 per process).

Each setting runs in fresh processes so that peak memory is its own: one process with the full head, one
process with Partial FC at --sample-rate, and N gloo processes (NCCL on CUDA) with the centres sharded.
Peak memory is the peak resident set of the busiest process on the CPU, peak allocated CUDA memory on a GPU.
Usage: python benchmarks/partial_fc.py [--classes 100000 1000000 2000000] [--device cuda] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

import torch
import torch.distributed as dist
from rich.console import Console
from rich.table import Table

EMBEDDING, BATCH = 512, 128


def one_setting(classes: int, rate: float, steps: int, device: str) -> dict:
    """Runs in its own process (one rank of a sharded setting when WORLD_SIZE > 1)."""
    from facecli.losses.margin import arcface

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        if device == "cuda":
            torch.cuda.set_device(dist.get_rank())
    target = torch.device(device)
    torch.manual_seed(dist.get_rank() if world > 1 else 0)
    loss = arcface(EMBEDDING, classes, sample_rate=rate).to(target)
    optimizer = torch.optim.SGD(loss.parameters(), lr=0.1, momentum=0.9)
    times = []
    for step in range(steps + 1):  # the first step is a warm-up (allocations, optimizer state)
        embeddings = torch.randn(BATCH, EMBEDDING, device=target, requires_grad=True)
        labels = torch.randint(0, classes, (BATCH,), device=target)
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss(embeddings, labels).backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - started)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if world > 1:
        dist.destroy_process_group()
    return {"step_s": sorted(times)[len(times) // 2], "peak_gib": peak}


def run_setting(classes: int, rate: float, processes: int, steps: int, device: str) -> dict:
    """The setting in fresh processes; the slowest rank's step and the largest rank's peak."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, __file__, "--one", str(classes), str(rate), str(steps), "--device", device]
    ranks = []
    for rank in range(processes):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(processes), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        if device == "cpu":
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
        ranks.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    results = []
    for rank in ranks:
        out, _ = rank.communicate()
        if rank.returncode:
            return {"step_s": float("nan"), "peak_gib": float("nan"), "failed": rank.returncode}
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {"step_s": max(r["step_s"] for r in results), "peak_gib": max(r["peak_gib"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[100_000, 1_000_000, 2_000_000])
    parser.add_argument("--sample-rate", type=float, default=0.1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", nargs=3, metavar=("CLASSES", "RATE", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_setting(int(args.one[0]), float(args.one[1]), int(args.one[2]), args.device)))
        return
    memory = "peak CUDA GiB" if args.device == "cuda" else "peak RSS GiB"
    table = Table(title=f"margin head, {EMBEDDING}-d, batch {BATCH} per process, {args.device}")
    for column in ("identities", "head", "processes", "step s", memory):
        table.add_column(column, justify="left" if column == "head" else "right")
    r = args.sample_rate
    settings = [("full", 1.0, 1), (f"Partial FC r={r:g}", r, 1), (f"Partial FC r={r:g}, sharded", r, args.processes)]
    for classes in args.classes:
        for name, rate, processes in settings:
            found = run_setting(classes, rate, processes, args.steps, args.device)
            table.add_row(f"{classes:,}", name, str(processes), f"{found['step_s']:.3f}", f"{found['peak_gib']:.2f}")
            Console().print(f"{classes:,} {name} x{processes}: {found}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
