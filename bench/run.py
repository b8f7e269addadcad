"""Speed and memory of tinytorch vs PyTorch 2.13 CPU, side by side in one run.

    python -m bench.run [NAME ...]      (default: every benchmark)

Writes results/bench.json (merged by benchmark name) and results/bench.md.
BENCH_THREADS (default 1) sets NumPy's BLAS threads and torch.set_num_threads alike:
on a shared 2-core machine one thread each is both the fairest and the fastest
setting for these small matrices (two OpenBLAS threads on contended cores spin).
Timings interleave the two frameworks step by step so that noise from other
processes on a shared machine hits both alike; the figure that matters is the
ratio. PyTorch gets as many threads as NumPy's BLAS.
"""
from __future__ import annotations

import os

# Thread counts must be fixed before NumPy (and its BLAS) is imported.
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(THREADS)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

# PyTorch's OpenMP threads otherwise spin after each call and take the cores from NumPy's BLAS,
# which would make interleaved timings measure the interference rather than the code.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

RESULTS = Path(__file__).resolve().parent.parent / "results"
Step = Callable[[], object]           # one step of a framework, timed
Benchmark = Callable[[], dict[str, Any]]  # one benchmark: its figures, written to results/bench.json
BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(fn: Benchmark) -> Benchmark:
    BENCHMARKS[fn.__name__] = fn
    return fn


def interleaved(steps: dict[str, Step], repeat: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds of each named step, running them in turn `repeat` times."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def peak_bytes(step: Step) -> int:
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def step_vs_torch(what: str, tinytorch_step: Step, torch_step: Step, repeat: int) -> dict[str, Any]:
    """One training step of each framework, timed side by side, and tinytorch's tracemalloc peak."""
    median = interleaved({"tinytorch": tinytorch_step, "torch": torch_step}, repeat=repeat)
    return {
        "what": what,
        "tinytorch_ms": median["tinytorch"] * 1e3,
        "torch_ms": median["torch"] * 1e3,
        "ratio": median["tinytorch"] / median["torch"],
        "tinytorch_peak_bytes": peak_bytes(tinytorch_step),
    }


@benchmark
def mlp_step():
    """Linear(784,64)+ReLU+Linear(64,10): forward, sum as the loss, backward; batch 64."""
    import torch
    import tinytorch as tt

    torch.set_num_threads(THREADS)
    tt.manual_seed(0)
    ours = tt.nn.Sequential(tt.nn.Linear(784, 64), tt.nn.ReLU(), tt.nn.Linear(64, 10))
    theirs = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((64, 784)).astype(np.float32)
    tx = torch.from_numpy(x)

    def tinytorch_step():
        ours.zero_grad()
        ours(tt.Tensor(x)).sum().backward()

    def torch_step():
        theirs.zero_grad()
        theirs(tx).sum().backward()

    return step_vs_torch("forward+backward, batch 64, Linear(784,64)+ReLU+Linear(64,10)",
                         tinytorch_step, torch_step, repeat=300)


def training_step(model, optimizer, loss_fn, x, y) -> None:
    """Forward, loss, zero the gradients, backward, step: the same calls in tinytorch and PyTorch."""
    loss = loss_fn(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def cnn_twins(torch):
    """The milestone CNN in tinytorch and in PyTorch, each with Adam at lr 1e-3: (ours, theirs, our_opt, their_opt)."""
    from bench.twins import torch_cnn
    from course.milestones.mnist_cnn import make_cnn
    from tinytorch.adam import Adam

    ours, theirs = make_cnn(), torch_cnn(torch)
    return ours, theirs, Adam(ours.parameters(), lr=1e-3), torch.optim.Adam(theirs.parameters(), lr=1e-3)


@benchmark
def cnn_step():
    """One training step of the milestone CNN (Adam, batch 64), the two frameworks interleaved step by step."""
    import torch
    import tinytorch as tt
    from tinytorch.losses import cross_entropy

    torch.set_num_threads(THREADS)
    tt.manual_seed(0)
    ours, theirs, our_opt, their_opt = cnn_twins(torch)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    r = np.random.default_rng(0)
    x = r.random((64, 1, 28, 28), dtype=np.float32)
    y = r.integers(0, 10, 64)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    return step_vs_torch("MNIST CNN training step (fwd+bwd+Adam), batch 64, interleaved",
                         lambda: training_step(ours, our_opt, cross_entropy, tt.Tensor(x), y),
                         lambda: training_step(theirs, their_opt, torch.nn.functional.cross_entropy, tx, ty),
                         repeat=100)


@benchmark
def mnist_cnn():
    """The milestone CNN, Adam lr 1e-3, batch 64: seconds per epoch and test accuracy after 1 and 2 epochs."""
    import torch
    import tinytorch as tt
    from course.milestones.mnist_cnn import MNIST_MEAN, MNIST_STD, evaluate, normalise
    from tinytorch.data import MNIST, DataLoader
    from tinytorch.losses import cross_entropy

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    tt.manual_seed(0)
    train_set, test_set = MNIST(train=True), MNIST(train=False)
    ours, theirs, our_opt, their_opt = cnn_twins(torch)
    x_test = torch.from_numpy((test_set.images - MNIST_MEAN) / MNIST_STD)
    y_test = torch.from_numpy(test_set.labels)

    def our_step(images, labels):
        training_step(ours, our_opt, cross_entropy, normalise(images), labels.data)

    def their_step(images, labels):
        training_step(theirs, their_opt, torch.nn.functional.cross_entropy,
                      torch.from_numpy((images.data - MNIST_MEAN) / MNIST_STD), torch.from_numpy(labels.data))

    result = {"what": "MNIST CNN epoch, Adam lr 1e-3, batch 64 (60,000 images)"}
    for epoch in (1, 2):
        for name, step in (("tinytorch", our_step), ("torch", their_step)):
            loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=epoch)
            start = time.perf_counter()
            for images, labels in loader:
                step(images, labels)
            result[f"{name}_epoch{epoch}_s"] = time.perf_counter() - start
            time.sleep(1)  # let the other framework's threads go idle
        result[f"tinytorch_accuracy_epoch{epoch}"] = evaluate(ours, DataLoader(test_set, batch_size=1000))[1]
        with torch.no_grad():
            result[f"torch_accuracy_epoch{epoch}"] = float((theirs(x_test).argmax(1) == y_test).float().mean())
    images, labels = next(iter(DataLoader(train_set, batch_size=64)))
    result["tinytorch_peak_bytes_per_step"] = peak_bytes(lambda: our_step(images, labels))
    result["tinytorch_s"] = (result["tinytorch_epoch1_s"] + result["tinytorch_epoch2_s"]) / 2
    result["torch_s"] = (result["torch_epoch1_s"] + result["torch_epoch2_s"]) / 2
    result["ratio"] = result["tinytorch_s"] / result["torch_s"]
    return result


@benchmark
def gpt_step():
    """One TinyGPT training step (milestone 4's model and optimizer, batch 12 x 64), interleaved with PyTorch."""
    import torch
    import tinytorch as tt
    from bench.twins import load_into_torch, torch_gpt
    from course.milestones.tinygpt import TrainConfig, make_optimizer
    from tinytorch.transformer import GPT, clip_grad_norm_

    torch.set_num_threads(THREADS)
    cfg = TrainConfig()
    tt.manual_seed(0)
    ours = GPT(cfg.model_config(65))
    theirs = torch_gpt(torch, ours.config)
    load_into_torch(torch, theirs, ours)
    our_opt = make_optimizer(ours, cfg)
    their_opt = torch.optim.AdamW([{"params": [p for p in theirs.parameters() if p.dim() >= 2], "weight_decay": 0.1},
                                   {"params": [p for p in theirs.parameters() if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=cfg.learning_rate, betas=cfg.betas)
    r = np.random.default_rng(0)
    x, y = r.integers(0, 65, (cfg.batch_size, cfg.block_size)), r.integers(0, 65, (cfg.batch_size, cfg.block_size))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def tinytorch_step():
        _, loss = ours(x, y)
        our_opt.zero_grad()
        loss.backward()
        clip_grad_norm_(ours.parameters(), cfg.grad_clip)
        our_opt.step()

    def torch_step():
        _, loss = theirs(tx, ty)
        their_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), cfg.grad_clip)
        their_opt.step()

    return step_vs_torch("TinyGPT training step (4 layers, 4 heads, 128 dims; fwd+bwd+clip+AdamW), "
                         "batch 12 x 64, interleaved", tinytorch_step, torch_step, repeat=60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {' '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {sorted(BENCHMARKS)}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "bench.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    import torch
    machine = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
               "cores": os.cpu_count(), "threads": THREADS, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    for name in args.names or BENCHMARKS:
        print(f"running {name} ...", flush=True)
        results[name] = {**BENCHMARKS[name](), "machine": machine}
        print(json.dumps(results[name], indent=2))
    path.write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| benchmark | what | tinytorch | torch | ratio |", "|---|---|---|---|---|"]
    for name, r in results.items():
        unit = "ms" if "tinytorch_ms" in r else "s"
        key = "tinytorch_ms" if unit == "ms" else "tinytorch_s"
        lines.append(f"| {name} | {r['what']} | {r[key]:.3f} {unit} | {r[key.replace('tinytorch', 'torch')]:.3f} {unit}"
                     f" | {r['ratio']:.2f}x |")
    (RESULTS / "bench.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {path} and {RESULTS / 'bench.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
