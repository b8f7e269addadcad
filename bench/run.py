"""Speed and memory of tinytorch vs PyTorch 2.13 CPU, side by side in one run, as users run each.

    python -m bench.run [NAME ...]      (default: every benchmark)
    BENCH_THREADS=2 python -m bench.run  (default: the CPUs the quota allows, see tinytorch.threads)

Writes results/bench.json (merged by benchmark name, one entry per thread count), results/bench.md and
the curves' plots results/curve_*_<threads>.png.

How it measures, and why:

* Each framework runs as its users run it by default, on BENCH_THREADS CPUs. PyTorch gets
  `torch.set_num_threads(BENCH_THREADS)` and nothing else (no OMP_WAIT_POLICY: its OpenMP threads
  spin between ops by default, which is part of why it is fast at two threads). tinytorch gets what
  `import tinytorch` and the milestones give a server with that CPU quota: NumPy's BLAS on one
  thread, and each training step's gradients computed by BENCH_THREADS data-parallel workers
  (module 12's DataParallel, one slice of the batch each).
* Blocks, not single steps: `BLOCK` consecutive steps of one framework, then `BLOCK` of the other, the
  order alternating, `ROUNDS` times. Interleaving single steps would evict each framework's caches
  before the other's step and slow both.
* `RUNS` runs of those rounds: each run gives a median step time per framework and a ratio; the
  report gives the median run and the spread (lowest and highest ratio). Noise from other processes
  shows as spread; say how quiet the machine was (the load average is recorded before and after).
* Resident memory, both frameworks measured the same way: a fresh process per framework builds the
  model and data, reads its resident set size (VmRSS), runs training steps and reads its peak
  resident size (VmHWM). The figure is the difference: what training steps add (activations, gradients,
  optimizer state, temporaries, one-time library set-up) on top of the process's start; a second
  figure does the same for later steps only ("steady"), with the peak reset in between.
"""
from __future__ import annotations

import os

# Thread counts must be fixed before NumPy (and its BLAS) is imported. BENCH_THREADS is PyTorch's
# OpenMP thread count; importing tinytorch then gives NumPy's BLAS its one thread (tinytorch.threads).
if os.environ.get("BENCH_THREADS"):
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = os.environ["BENCH_THREADS"]
from tinytorch.threads import cpu_quota, default_workers, use_default_threads  # noqa: E402

BLAS_THREADS = use_default_threads()
THREADS = int(os.environ.get("BENCH_THREADS") or default_workers())   # CPUs: PyTorch's threads, tinytorch's workers

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results"
BLOCK, ROUNDS, RUNS = 10, 3, 3   # steps per block, blocks per framework per run, runs
Step = Callable[[], object]           # one step of a framework, timed
Steps = dict[str, Step]               # {"tinytorch": step, "torch": step}
Benchmark = Callable[[], dict[str, Any]]  # one benchmark: its figures, written to results/bench.json
BENCHMARKS: dict[str, Benchmark] = {}
STEP_BUILDERS: dict[str, Callable[[], Steps]] = {}  # what the resident-memory processes build


def benchmark(fn: Benchmark) -> Benchmark:
    BENCHMARKS[fn.__name__] = fn
    return fn


def in_blocks(steps: Steps, block: int = BLOCK, rounds: int = ROUNDS, runs: int = RUNS,
              warmup: int = 3) -> dict[str, Any]:
    """Seconds per step of each framework, run in blocks of `block` consecutive steps: per run and overall."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    names = list(steps)
    per_run: list[dict[str, float]] = []
    for _ in range(runs):
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names if r % 2 == 0 else reversed(names):   # alternate who goes first
                step = steps[name]
                for _ in range(block):
                    start = time.perf_counter()
                    step()
                    times[name].append(time.perf_counter() - start)
        per_run.append({name: statistics.median(ts) for name, ts in times.items()})
    ratios = sorted(run["tinytorch"] / run["torch"] for run in per_run)
    return {
        "tinytorch_ms": 1e3 * statistics.median(run["tinytorch"] for run in per_run),
        "torch_ms": 1e3 * statistics.median(run["torch"] for run in per_run),
        "ratio": statistics.median(ratios),
        "ratio_spread": [ratios[0], ratios[-1]],
        "runs_ms": [{name: round(1e3 * s, 2) for name, s in run.items()} for run in per_run],
        "method": f"{runs} runs x {rounds} rounds of {block} consecutive steps per framework, order alternating",
    }


def _status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS: resident now, VmHWM: the peak so far)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}: resident memory is measured on Linux only")


def resident_growth(step: Step, steps: int = 3) -> tuple[int, int]:
    """Bytes by which training steps raise this process's peak resident size: (from the start, in steady state).

    From the start: the first `steps` steps against the resident size after setup (so optimizer state
    and each library's one-time initialisation count). Steady state: `steps` more steps against the
    resident size just before them, after the peak is reset (Linux: write 5 to /proc/self/clear_refs).
    """
    import gc
    gc.collect()
    start = _status_kb("VmRSS")
    for _ in range(steps):
        step()
    first = _status_kb("VmHWM") - start
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    for _ in range(steps):
        step()
    return 1024 * first, 1024 * (_status_kb("VmHWM") - before)


def resident_in_fresh_processes(name: str) -> dict[str, Any]:
    """Resident growth of one framework's steps of benchmark `name`, each framework in a process of its own."""
    figures: dict[str, Any] = {}
    for framework in ("tinytorch", "torch"):
        out = subprocess.run([sys.executable, "-m", "bench.run", "--resident", name, framework],
                             capture_output=True, text=True, check=True, cwd=RESULTS.parent,
                             env={**os.environ, "BENCH_THREADS": str(THREADS)})
        first, steady = (int(n) for n in out.stdout.split()[-2:])
        figures[f"{framework}_resident_bytes"] = first
        figures[f"{framework}_steady_resident_bytes"] = steady
    figures["resident_ratio"] = figures["tinytorch_resident_bytes"] / figures["torch_resident_bytes"]
    figures["steady_resident_ratio"] = (figures["tinytorch_steady_resident_bytes"]
                                        / max(1, figures["torch_steady_resident_bytes"]))
    return figures


def step_vs_torch(name: str, what: str, block: int = BLOCK, resident: bool = True) -> dict[str, Any]:
    """Benchmark `name`'s two steps, timed in blocks, and (optionally) their resident memory."""
    result = {"what": what, **in_blocks(STEP_BUILDERS[name](), block=block)}
    if resident:
        result.update(resident_in_fresh_processes(name))
    return result


def steps_builder(fn: Callable[[], Steps]) -> Callable[[], Steps]:
    STEP_BUILDERS[fn.__name__.removeprefix("build_")] = fn
    return fn


def training_step(model, optimizer, loss_fn, x, y) -> None:
    """PyTorch's training step: forward, loss, zero the gradients, backward, step."""
    loss = loss_fn(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def parallel_training_step(parallel, optimizer, loss_fn, x, y) -> None:
    """tinytorch's, as its milestones take it: the loss `loss_fn(model, x, y)` and its gradients computed by
    THREADS data-parallel workers (module 12's DataParallel), then the step."""
    parallel.backward(loss_fn, x, y)
    optimizer.step()


@steps_builder
def build_mlp_step() -> Steps:
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

    return {"tinytorch": tinytorch_step, "torch": torch_step}


@benchmark
def mlp_step():
    """Linear(784,64)+ReLU+Linear(64,10): forward, sum as the loss, backward; batch 64."""
    return step_vs_torch("mlp_step", "forward+backward, batch 64, Linear(784,64)+ReLU+Linear(64,10)",
                         resident=False)


def cnn_twins(torch):
    """The milestone CNN in tinytorch and in PyTorch, each with Adam at lr 1e-3: (ours, theirs, our_opt, their_opt)."""
    from bench.twins import torch_cnn
    from course.milestones.mnist_cnn import make_cnn
    from tinytorch.adam import Adam

    ours, theirs = make_cnn(), torch_cnn(torch)
    return ours, theirs, Adam(ours.parameters(), lr=1e-3), torch.optim.Adam(theirs.parameters(), lr=1e-3)


def cnn_steps(batch: int) -> Steps:
    """One training step of the milestone CNN (Adam) at batch size `batch`, in each framework."""
    import torch
    import tinytorch as tt
    from course.milestones.mnist_cnn import classify
    from tinytorch.production import DataParallel

    torch.set_num_threads(THREADS)
    tt.manual_seed(0)
    ours, theirs, our_opt, their_opt = cnn_twins(torch)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    r = np.random.default_rng(0)
    x = r.random((batch, 1, 28, 28), dtype=np.float32)
    y = r.integers(0, 10, batch)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    parallel = DataParallel(ours, THREADS)
    return {"tinytorch": lambda: parallel_training_step(parallel, our_opt, classify, tt.Tensor(x), y),
            "torch": lambda: training_step(theirs, their_opt, torch.nn.functional.cross_entropy, tx, ty)}


@steps_builder
def build_cnn_step() -> Steps:
    return cnn_steps(64)


@benchmark
def cnn_step():
    """One training step of the milestone CNN (Adam, batch 64)."""
    return step_vs_torch("cnn_step", "MNIST CNN training step (fwd+bwd+Adam), batch 64")


@benchmark
def mnist_cnn():
    """The milestone CNN, Adam lr 1e-3, batch 64: seconds per epoch and test accuracy after 1 and 2 epochs."""
    import torch
    import tinytorch as tt
    from course.milestones.mnist_cnn import MNIST_MEAN, MNIST_STD, classify, evaluate, normalise
    from tinytorch.data import MNIST, DataLoader
    from tinytorch.production import DataParallel

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    tt.manual_seed(0)
    train_set, test_set = MNIST(train=True), MNIST(train=False)
    ours, theirs, our_opt, their_opt = cnn_twins(torch)
    parallel = DataParallel(ours, THREADS)
    x_test = torch.from_numpy((test_set.images - MNIST_MEAN) / MNIST_STD)
    y_test = torch.from_numpy(test_set.labels)

    def our_step(images, labels):
        parallel_training_step(parallel, our_opt, classify, normalise(images), labels.data)

    def their_step(images, labels):
        training_step(theirs, their_opt, torch.nn.functional.cross_entropy,
                      torch.from_numpy((images.data - MNIST_MEAN) / MNIST_STD), torch.from_numpy(labels.data))

    result: dict[str, Any] = {"what": "MNIST CNN epoch, Adam lr 1e-3, batch 64 (60,000 images)"}
    for epoch in (1, 2):
        for name, step in (("tinytorch", our_step), ("torch", their_step)):
            loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=epoch)
            start = time.perf_counter()
            for images, labels in loader:
                step(images, labels)
            result[f"{name}_epoch{epoch}_s"] = time.perf_counter() - start
        result[f"tinytorch_accuracy_epoch{epoch}"] = evaluate(ours, DataLoader(test_set, batch_size=1000))[1]
        with torch.no_grad():
            result[f"torch_accuracy_epoch{epoch}"] = float((theirs(x_test).argmax(1) == y_test).float().mean())
    result["tinytorch_s"] = (result["tinytorch_epoch1_s"] + result["tinytorch_epoch2_s"]) / 2
    result["torch_s"] = (result["torch_epoch1_s"] + result["torch_epoch2_s"]) / 2
    result["ratio"] = result["tinytorch_s"] / result["torch_s"]
    return result


def gpt_twins():
    """Milestone 4's model and optimizer in tinytorch and PyTorch, the same weights: (cfg, ours, theirs, opts)."""
    import torch
    import tinytorch as tt
    from bench.twins import load_into_torch, torch_gpt
    from course.milestones.tinygpt import TrainConfig, make_optimizer
    from tinytorch.transformer import GPT

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
    return cfg, ours, theirs, our_opt, their_opt


@steps_builder
def build_gpt_step() -> Steps:
    import torch
    from course.milestones.tinygpt import next_token_loss
    from tinytorch.production import DataParallel
    from tinytorch.transformer import clip_grad_norm_

    cfg, ours, theirs, our_opt, their_opt = gpt_twins()
    r = np.random.default_rng(0)
    x, y = r.integers(0, 65, (cfg.batch_size, cfg.block_size)), r.integers(0, 65, (cfg.batch_size, cfg.block_size))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    parallel = DataParallel(ours, THREADS)

    def tinytorch_step():
        parallel.backward(next_token_loss, x, y)
        clip_grad_norm_(ours.parameters(), cfg.grad_clip)
        our_opt.step()

    def torch_step():
        _, loss = theirs(tx, ty)
        their_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), cfg.grad_clip)
        their_opt.step()

    return {"tinytorch": tinytorch_step, "torch": torch_step}


@benchmark
def gpt_step():
    """One TinyGPT training step (milestone 4's model and optimizer, batch 12 x 64)."""
    return step_vs_torch("gpt_step", "TinyGPT training step (4 layers, 4 heads, 128 dims; fwd+bwd+clip+AdamW), "
                                     "batch 12 x 64")


@benchmark
def gpt_generate():
    """500 new tokens from a one-token prompt, cropping the context to the block size (no KV cache in either)."""
    import torch
    from tinytorch.generation import generate

    _, ours, theirs, _, _ = gpt_twins()
    block_size, new_tokens = ours.config.block_size, 500
    prompt = np.zeros((1, 1), dtype=np.int64)

    def torch_generate():
        idx = torch.from_numpy(prompt)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for _ in range(new_tokens):
                logits, _ = theirs(idx[:, -block_size:])
                probs = torch.softmax(logits[:, -1, :], dim=-1)
                idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)], dim=1)
        return idx

    theirs.eval()
    steps = {"tinytorch": lambda: generate(ours, prompt, new_tokens, seed=0), "torch": torch_generate}
    result = in_blocks(steps, block=1, rounds=1, warmup=1)
    return {"what": f"TinyGPT generation, {new_tokens} new tokens, batch 1 (ms per generation)", **result}


def exponent(sizes: list[int], seconds: list[float], points: int = 3) -> float:
    """The slope of log(time) against log(size) over the `points` largest sizes: time ~ size ** slope."""
    return float(np.polyfit(np.log(sizes[-points:]), np.log(seconds[-points:]), 1)[0])


def curve(name: str, label: str, sizes: list[int], make_steps: Callable[[int], Steps], block: int) -> dict[str, Any]:
    """Median time per step of both frameworks at each size, their exponents, and a log-log plot."""
    times: dict[str, list[float]] = {"tinytorch": [], "torch": []}
    plot = RESULTS / f"{name}_{THREADS}thread{'s' if THREADS > 1 else ''}.png"
    for size in sizes:
        measured = in_blocks(make_steps(size), block=block, rounds=2, runs=1, warmup=2)
        times["tinytorch"].append(measured["tinytorch_ms"])
        times["torch"].append(measured["torch_ms"])
    result = {"what": f"ms per step against {label}", "sizes": sizes,
              "tinytorch_ms": times["tinytorch"], "torch_ms": times["torch"],
              "tinytorch_exponent": exponent(sizes, times["tinytorch"]), "torch_exponent": exponent(sizes, times["torch"]),
              "plot": str(plot)}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for framework, ms in times.items():
        ax.loglog(sizes, ms, "o-", label=f"{framework} (time ~ {label.split()[0]}^{result[framework + '_exponent']:.2f})")
    ax.set_xticks(sizes, [str(size) for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylabel("ms per step")
    ax.set_title(f"{name} ({THREADS} thread{'s' if THREADS > 1 else ''})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(plot, dpi=100)
    plt.close(fig)
    return result


@benchmark
def curve_cnn_batch():
    """The milestone CNN's training step at batch sizes 16..256."""
    return curve("curve_cnn_batch", "batch size", [16, 32, 64, 128, 256], cnn_steps, block=5)


def attention_steps(T: int) -> Steps:
    """Causal attention on (4, 4, T, 32) queries, keys and values: forward, sum, backward, in each framework."""
    import torch
    import tinytorch as tt
    from tinytorch.attention import causal_mask, scaled_dot_product_attention

    torch.set_num_threads(THREADS)
    q, k, v = (np.random.default_rng(i).standard_normal((4, 4, T, 32)).astype(np.float32) for i in range(3))
    ours = [tt.Tensor(a, requires_grad=True) for a in (q, k, v)]
    theirs = [torch.from_numpy(a).requires_grad_() for a in (q, k, v)]
    mask = causal_mask(T)

    def tinytorch_step():
        scaled_dot_product_attention(*ours, mask).sum().backward()

    def torch_step():
        torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=True).sum().backward()

    return {"tinytorch": tinytorch_step, "torch": torch_step}


@benchmark
def curve_attention_length():
    """Causal attention forward+backward at sequence lengths 32..512: the T^2 of the scores."""
    return curve("curve_attention_length", "sequence length T", [32, 64, 128, 256, 512], attention_steps, block=5)


def cpu_model() -> str:
    """The CPU's name and its widest vector units (ratios differ between machines: PyTorch's kernels use AVX-512)."""
    fields: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())   # the first CPU's
    flags = fields.get("flags", "").split()
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{fields.get('model name', '?')} ({widest})"


def machine() -> dict[str, Any]:
    import torch
    return {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "cpu": cpu_model(), "cores": os.cpu_count(), "cpu_quota": cpu_quota(), "default_workers": default_workers(),
            "threads": THREADS, "torch_threads": torch.get_num_threads(), "tinytorch_blas_threads": BLAS_THREADS,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "load_average_before": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def table(results: dict[str, Any]) -> str:
    """results/bench.md: one row per benchmark and thread count."""
    lines = ["| benchmark | threads | what | tinytorch | torch | ratio (spread of runs) | resident: tinytorch / torch |",
             "|---|---|---|---|---|---|---|"]
    for key, r in sorted(results.items()):
        if "sizes" in r:
            row = (f"exponent {r['tinytorch_exponent']:.2f} | exponent {r['torch_exponent']:.2f} | "
                   f"{r['tinytorch_ms'][-1] / r['torch_ms'][-1]:.2f}x at {r['sizes'][-1]} |")
        else:
            unit = "ms" if "tinytorch_ms" in r else "s"
            ours, theirs = r[f"tinytorch_{unit}"], r[f"torch_{unit}"]
            spread = f" ({r['ratio_spread'][0]:.2f}-{r['ratio_spread'][1]:.2f})" if "ratio_spread" in r else ""
            row = f"{ours:.1f} {unit} | {theirs:.1f} {unit} | {r['ratio']:.2f}x{spread} |"
        memory = (f" {r['tinytorch_resident_bytes'] / 2**20:.1f} / {r['torch_resident_bytes'] / 2**20:.1f} MB "
                  f"({r['resident_ratio']:.2f}x); steady {r['tinytorch_steady_resident_bytes'] / 2**20:.1f} / "
                  f"{r['torch_steady_resident_bytes'] / 2**20:.1f} MB |" if "resident_ratio" in r else " |")
        lines.append(f"| {key.split('@')[0]} | {r['machine']['threads']} | {r['what']} | {row}{memory}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {' '.join(BENCHMARKS)}")
    parser.add_argument("--resident", nargs=2, metavar=("NAME", "FRAMEWORK"),
                        help="(internal) print the resident growth of one framework's steps of benchmark NAME")
    args = parser.parse_args(argv)
    if args.resident:
        name, framework = args.resident
        step = STEP_BUILDERS[name]()[framework]
        print(*resident_growth(step))
        return 0
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {sorted(BENCHMARKS)}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "bench.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in args.names or BENCHMARKS:
        print(f"running {name} with {THREADS} thread(s) ...", flush=True)
        about = machine()
        result = BENCHMARKS[name]()
        about["load_average_after"] = os.getloadavg()
        results[f"{name}@{THREADS}"] = {**result, "machine": about}
        print(json.dumps(results[f"{name}@{THREADS}"], indent=2), flush=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "bench.md").write_text(table(results))
    print(f"wrote {path} and {RESULTS / 'bench.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
