"""Data-parallel training steps: compute against communication, measured here and modelled beyond.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_distributed.py

One run does three things.

1. **Measures** a ResNet-20 training step (float32, global batch 128, 1x28x28 MNIST-sized
   images, numba backend) as one process with 1 and 2 threads, and as 2 ranks under the
   virtualenv's ``mpiexec`` with 1 thread each.  Each step's forward + backward
   ("compute") and its gradient Allreduce ("communication") are timed apart, on fresh
   random batches, and the medians of the timed steps are kept.  A barrier before the
   Allreduce separates waiting for the slower rank from the reduction itself.
2. **Times** the buffer ``Allreduce`` against mpi4py's pickling ``allreduce`` on
   ResNet-20's 270k gradients (2 ranks).
3. **Models** N = 2...64 ranks on a network, for ResNet-20 and ResNet-50, over 10, 25 and
   100 Gbit/s.  A ring allreduce sends 2 (N-1)/N of the gradient bytes per rank and pays
   2 (N-1) message latencies per bucket:

       t_comm(N) = 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency * buckets
       t_step(N) = t_compute(B / N) + t_comm(N)        (no overlap of the two: tinyres
                                                         reduces after the backward pass)

   t_compute(B/N) is the measured one-thread step time per image times B/N for
   ResNet-20, and that time scaled by the ratio of multiply-accumulates for ResNet-50
   (4.1 G against 31 M per image): one such CPU core per rank.

It prints the machine first (``machine.py``) and writes benchmarks/results/distributed.json
(the machine's description under ``"machine"``) and docs/figures/distributed-scaling.png.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
MPIEXEC = pathlib.Path(sys.executable).parent / "mpiexec"
GLOBAL_BATCH = 128
BANDWIDTHS_GBIT = (10, 25, 100)
LATENCY_S = 20e-6                      # one message on a cluster network, TCP over Ethernet
WORKERS = (2, 4, 8, 16, 32, 64)
# parameters and multiply-accumulates per image (tinyres summary): ResNet-20 as measured
# here (1x28x28, 10 classes), ResNet-50 at its natural 3x224x224 and 1,000 classes
NETWORKS = {"resnet20": dict(parameters=269_434, macs_per_image=30.8e6),
            "resnet50": dict(parameters=25_557_032, macs_per_image=4.09e9)}
BUCKET_MB = 4


def measure_steps(steps, threads):
    """Median compute and communication seconds of a ResNet-20 step on this rank."""
    import tinyres as tr
    import tinyres.distributed as dist
    import tinyres.functional as F
    from tinyres.models import cifar_resnet
    from tinyres.nn.parallel import DistributedDataParallel

    rank, world_size = dist.init()
    tr.set_backend("numba")
    tr.set_num_threads(threads)
    model = DistributedDataParallel(cifar_resnet(20, num_classes=10, in_channels=1))
    optimizer = tr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    reduce_gradients, communication, waiting = model.average_gradients, [], []

    def timed_reduce():
        # the barrier first, so that waiting for the slower rank is not counted as the
        # Allreduce's own time
        started = time.perf_counter()
        dist.barrier()
        arrived = time.perf_counter()
        reduce_gradients()
        waiting.append(arrived - started)
        communication.append(time.perf_counter() - arrived)
    object.__setattr__(model, "average_gradients", timed_reduce)
    rng = np.random.default_rng(rank)
    share = GLOBAL_BATCH // world_size
    totals = []
    for step in range(steps + 2):                 # two warm-up steps compile the kernels
        images = rng.standard_normal((share, 1, 28, 28)).astype(np.float32)
        labels = rng.integers(0, 10, share)
        dist.barrier()
        started = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(tr.tensor(images)), labels).backward()
        optimizer.step()
        totals.append(time.perf_counter() - started)
    totals, communication, waiting = totals[2:], communication[2:], waiting[2:]
    compute = [total - comm - wait for total, comm, wait in zip(totals, communication, waiting)]
    return {"ranks": world_size, "threads": threads, "batch_per_rank": share,
            "step_s": statistics.median(totals), "compute_s": statistics.median(compute),
            "communication_s": statistics.median(communication),
            "waiting_s": statistics.median(waiting),
            "communication_share": statistics.median(communication) / statistics.median(totals)}


def time_allreduce(repeats):
    """Buffer Allreduce against pickled allreduce of ResNet-20's gradients, on this rank."""
    from mpi4py import MPI
    world = MPI.COMM_WORLD
    values = np.random.default_rng(0).standard_normal(NETWORKS["resnet20"]["parameters"]).astype(np.float32)
    buffer_times, pickled_times = [], []
    for _ in range(repeats):
        world.Barrier()
        started = time.perf_counter()
        world.Allreduce(MPI.IN_PLACE, values.copy(), op=MPI.SUM)
        buffer_times.append(time.perf_counter() - started)
        world.Barrier()
        started = time.perf_counter()
        world.allreduce(values, op=MPI.SUM)
        pickled_times.append(time.perf_counter() - started)
    return {"numbers": int(values.size), "Allreduce_s": statistics.median(buffer_times),
            "pickled_allreduce_s": statistics.median(pickled_times)}


def ring_allreduce_seconds(parameters, workers, bandwidth_gbit, latency=LATENCY_S,
                           bucket_mb=BUCKET_MB, bytes_per_number=4):
    """The modelled time of one ring allreduce of every gradient (see the module docstring)."""
    data = parameters * bytes_per_number
    buckets = max(1, -(-data // int(bucket_mb * 2 ** 20)))
    return (2 * (workers - 1) / workers * data / (bandwidth_gbit * 1e9 / 8)
            + 2 * (workers - 1) * latency * buckets)


def scaling_model(seconds_per_image):
    """Step time, communication share and speed-up over one rank, per network and bandwidth."""
    model = {}
    for name, network in NETWORKS.items():
        per_image = seconds_per_image * network["macs_per_image"] / NETWORKS["resnet20"]["macs_per_image"]
        one_rank = per_image * GLOBAL_BATCH
        rows = []
        for bandwidth in BANDWIDTHS_GBIT:
            for workers in WORKERS:
                compute = per_image * GLOBAL_BATCH / workers
                communication = ring_allreduce_seconds(network["parameters"], workers, bandwidth)
                rows.append({"workers": workers, "bandwidth_gbit": bandwidth,
                             "compute_s": compute, "communication_s": communication,
                             "communication_share": communication / (compute + communication),
                             "speedup": one_rank / (compute + communication)})
        model[name] = rows
    return model


def plot(model, path):
    """Parallel efficiency (speed-up / N) against N, one panel per network."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for axis, (name, rows) in zip(axes, model.items()):
        for bandwidth, style in zip(BANDWIDTHS_GBIT, ("o-", "s--", "^:")):
            mine = [row for row in rows if row["bandwidth_gbit"] == bandwidth]
            axis.plot([row["workers"] for row in mine],
                      [100 * row["speedup"] / row["workers"] for row in mine], style,
                      label=f"{bandwidth} Gbit/s")
        axis.set_xscale("log", base=2)
        axis.set_xticks(WORKERS, [str(n) for n in WORKERS])
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set(ylim=(0, 105), xlabel="ranks N", title=f"{name}, global batch {GLOBAL_BATCH}")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("parallel efficiency (%)")
    axes[0].legend(fontsize=8, loc="lower left")
    figure.suptitle("Modelled data parallelism: ring allreduce after the backward pass, "
                    "one CPU core per rank", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _run_ranks(arguments):
    from tinyres.backend.cpu_threads import environment_with_threads

    completed = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, __file__, *arguments],
                               capture_output=True, text=True, env=environment_with_threads(1),
                               timeout=1800)
    if completed.returncode != 0:
        raise SystemExit(f"mpiexec failed:\n{completed.stdout}\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default: %(default)s)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "distributed.json"))
    parser.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "distributed-scaling.png"))
    parser.add_argument("--rank-job", choices=("steps", "allreduce"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_job:                             # inside mpiexec: one rank's share
        result = measure_steps(args.steps, 1) if args.rank_job == "steps" else time_allreduce(20)
        import tinyres.distributed as dist
        if dist.rank() == 0:
            print(json.dumps(result))
        return
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from machine import record_machine
    machine = record_machine()
    measured = [measure_steps(args.steps, 1), measure_steps(args.steps, 2),
                _run_ranks(["--rank-job", "steps", "--steps", str(args.steps)])]
    allreduce = _run_ranks(["--rank-job", "allreduce"])
    for row in measured:
        print(f"{row['ranks']} rank(s) x {row['threads']} thread(s): step {1000 * row['step_s']:.0f} ms, "
              f"compute {1000 * row['compute_s']:.0f} ms, communication "
              f"{1000 * row['communication_s']:.2f} ms ({100 * row['communication_share']:.2f} %), "
              f"waiting for the other rank {1000 * row['waiting_s']:.2f} ms")
    print(f"Allreduce of {allreduce['numbers']:,} float32: {1000 * allreduce['Allreduce_s']:.3f} ms; "
          f"pickled allreduce {1000 * allreduce['pickled_allreduce_s']:.3f} ms "
          f"({allreduce['pickled_allreduce_s'] / allreduce['Allreduce_s']:.0f}x)")
    model = scaling_model(measured[0]["compute_s"] / GLOBAL_BATCH)
    plot(model, args.figure)
    result = {"machine": machine, "global_batch": GLOBAL_BATCH, "measured": measured, "allreduce": allreduce,
              "model_assumptions": {"latency_s": LATENCY_S, "bucket_mb": BUCKET_MB,
                                    "networks": NETWORKS, "overlap": "none"},
              "model": model}
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()
