# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 04 — Layers
#
# A network is a tree of **modules**: a `Linear` layer holds a weight and a
# bias, a `Sequential` holds layers, a GPT holds blocks that hold attention
# and MLPs. Every framework needs the same few services from that tree:
#
# * find every learnable tensor (`parameters()`), with a stable name for each
#   (`named_parameters()`: `"0.weight"`, `"2.bias"`), so an optimizer can
#   update them and a checkpoint can save them;
# * switch the whole tree between training and evaluation (`train()`,
#   `eval()`), because layers like dropout behave differently;
# * save and restore the numbers (`state_dict()`, `load_state_dict()`).
#
# In this module you write `Parameter`, `Module`, `Linear` and `Sequential`,
# with the same names, shapes and initialisation as PyTorch — so at the end
# you can copy the weights of a `torch.nn.Linear` into yours and get the same
# outputs.
#
# A `Parameter` is simply a Tensor that always requires gradients. A
# `Module` finds its parameters by looking at its own attributes: no
# registration calls, just `self.weight = Parameter(...)`.

# %%
#| default_exp layers

# %%
#| export
"""Parameter, Module, Linear, Sequential and activation modules (module 04)."""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from tinytorch import activations
from tinytorch.tensor import Tensor, TensorLike, as_tensor, rng


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module: it always requires gradients."""

    def __init__(self, data: TensorLike, dtype: DTypeLike | None = None):
        super().__init__(data, requires_grad=True, dtype=dtype)


# %% [markdown]
# ## Module
#
# The tree walk is written for you: `_children()` yields each attribute that
# is a Module (or a list of Modules, named `blocks.0`, `blocks.1`, ...), and
# `_named_tensors()` yields every Parameter below with its dotted name. You
# write the services built on top of it.
#
# `named_parameters()` must list a Parameter **once** even when two modules
# share it (weight tying, module 14). `load_state_dict()` must check every
# name and shape **before** changing anything: a half-loaded model is worse
# than an error.

# %% nbgrader={"grade": false, "grade_id": "module", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Module:
    """Base class of every layer and model. Subclasses set attributes and define forward()."""

    training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Module) for v in value):
                for i, child in enumerate(value):
                    yield f"{name}.{i}", child

    def _named_tensors(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self._children():
            yield from child._named_tensors(f"{prefix}{name}.")

    def modules(self) -> Iterator[Module]:
        """This module and every module below it."""
        yield self
        for _, child in self._children():
            yield from child.modules()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, each Parameter once even if shared."""
        ### BEGIN SOLUTION
        seen = set()
        for name, p in self._named_tensors():
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p
        ### END SOLUTION

    def parameters(self) -> list[Parameter]:
        ### BEGIN SOLUTION
        return [p for _, p in self.named_parameters()]
        ### END SOLUTION

    def train(self, mode: bool = True) -> Module:
        """Set `training` on this module and every module below it."""
        ### BEGIN SOLUTION
        for module in self.modules():
            module.training = mode
        return self
        ### END SOLUTION

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """A copy of every parameter's numbers, by dotted name."""
        ### BEGIN SOLUTION
        return OrderedDict((name, p.data.copy()) for name, p in self._named_tensors())
        ### END SOLUTION

    def load_state_dict(self, state: Mapping[str, ArrayLike], strict: bool = True) -> None:
        """Copy numbers into the parameters; check every name and shape before changing any."""
        ### BEGIN SOLUTION
        own = dict(self._named_tensors())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict does not fit {type(self).__name__}: "
                           f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}")
        arrays = {name: np.asarray(value) for name, value in state.items() if name in own}
        for name, array in arrays.items():
            if array.shape != own[name].shape:
                raise ValueError(f"state_dict[{name!r}] has shape {array.shape}, "
                                 f"but the model's parameter has shape {own[name].shape}")
        for name, array in arrays.items():
            own[name].data[...] = array
        ### END SOLUTION

    def __repr__(self) -> str:
        children = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._children()]
        inside = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({inside})"
        return f"{type(self).__name__}({inside}\n" + "\n".join(children) + "\n)"

    def extra_repr(self) -> str:
        return ""


# %% [markdown]
# ## Linear
#
# `y = x Wᵀ + b` with `W` of shape `(out_features, in_features)`, PyTorch's
# layout: row `i` of `W` is the weights of output unit `i`. PyTorch draws
# both `W` and `b` uniformly from `(-1/√in, 1/√in)`, which keeps the
# output's variance near the input's whatever the width. The initialisation
# is given; write `forward`, and make a wrong input width an error that
# names both numbers.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Linear(Module):
    """y = x @ W.T + b, with W of shape (out_features, in_features) as in PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got in_features={in_features}, out_features={out_features}")
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(rng().uniform(-bound, bound, (out_features, in_features)).astype(np.float32))
        self.bias = Parameter(rng().uniform(-bound, bound, out_features).astype(np.float32)) if bias else None

    def forward(self, x: TensorLike) -> Tensor:
        x = as_tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expects inputs whose last dimension is {self.in_features}, "
                             f"got shape {x.shape}")
        ### BEGIN SOLUTION
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# %% [markdown]
# ## Sequential and the activation modules
#
# `Sequential(a, b, c)(x)` is `c(b(a(x)))`; `Sequential([a, b, c])`, a list
# (as the course design writes it), means the same. It stores its layers as
# attributes named `"0"`, `"1"`, ... so parameter names match PyTorch's
# (`"0.weight"`). An activation module's `forward` is module 03's function
# itself (`forward = staticmethod(activations.relu)`): it has no state.

# %% nbgrader={"grade": false, "grade_id": "sequential", "locked": false, "schema_version": 3, "solution": true, "task": false}
#| export
class Sequential(Module):
    """Apply layers one after another."""

    def __init__(self, *layers: Module | Sequence[Module]):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])  # Sequential([a, b, c]) is Sequential(a, b, c)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Modules, argument {i} is a {type(layer).__name__}")
            setattr(self, str(i), layer)

    def __len__(self) -> int:
        return sum(1 for _ in self._children())

    def __getitem__(self, i: int) -> Module:
        return [child for _, child in self._children()][i]

    def forward(self, x: Any) -> Any:
        ### BEGIN SOLUTION
        for _, layer in self._children():
            x = layer(x)
        return x
        ### END SOLUTION


class ReLU(Module):
    forward = staticmethod(activations.relu)


class Sigmoid(Module):
    forward = staticmethod(activations.sigmoid)


class Tanh(Module):
    forward = staticmethod(activations.tanh)


class GELU(Module):
    """The tanh approximation: PyTorch's GELU(approximate="tanh")."""

    forward = staticmethod(activations.gelu)


class Softmax(Module):
    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x: TensorLike) -> Tensor:
        return activations.softmax(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


# %% [markdown]
# ## Try it: a two-layer network for MNIST-sized inputs

# %%
import tinytorch

tinytorch.manual_seed(0)
mlp = Sequential(Linear(784, 64), ReLU(), Linear(64, 10))
print(mlp)
print([(name, p.shape) for name, p in mlp.named_parameters()])
logits = mlp(Tensor(np.zeros((32, 784), dtype=np.float32)))
print("logits", logits.shape)

# %% [markdown]
# ## Tests

# %% nbgrader={"grade": true, "grade_id": "test-layers-linear", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Linear has PyTorch's shapes and init range, computes x W^T + b, and names bad widths."""
layer = Linear(3, 2)
assert layer.weight.shape == (2, 3), f"got layer.weight.shape = {layer.weight.shape!r}"
assert layer.bias.shape == (2,), f"got layer.bias.shape = {layer.bias.shape!r}"
assert np.all(np.abs(layer.weight.data) <= 1 / np.sqrt(3)), \
    f"got np.abs(layer.weight.data) <= 1 / np.sqrt(3) = {np.abs(layer.weight.data) <= 1 / np.sqrt(3)!r}"
x = np.arange(6, dtype=np.float32).reshape(2, 3)
assert np.allclose(layer(Tensor(x)).data, x @ layer.weight.data.T + layer.bias.data, atol=1e-6), \
    f"got layer(Tensor(x)).data = {layer(Tensor(x)).data!r}; x @ layer.weight.data.T + layer.bias.data = {x @ layer.weight.data.T + layer.bias.data!r}"
assert layer(Tensor(np.ones((4, 5, 3), dtype=np.float32))).shape == (4, 5, 2), \
    f"got layer(Tensor(np.ones((4, 5, 3), dtype=np.float32))).shape = {layer(Tensor(np.ones((4, 5, 3), dtype=np.float32))).shape!r}"
assert Linear(3, 2, bias=False).bias is None, f"got Linear(3, 2, bias=False).bias = {Linear(3, 2, bias=False).bias!r}"
try:
    layer(Tensor(np.ones((2, 4), dtype=np.float32)))
    raise AssertionError("a width-4 input should be refused")
except ValueError as error:
    assert "3" in str(error), f"got str(error) = {str(error)!r}"
    assert "(2, 4)" in str(error), f"got str(error) = {str(error)!r}"

# %% nbgrader={"grade": true, "grade_id": "test-layers-parameters", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""Parameters are found with PyTorch's names, shared ones once, and train/eval reach every module."""
net = Sequential(Linear(4, 3), ReLU(), Linear(3, 1))
names = [name for name, _ in net.named_parameters()]
assert names == ["0.weight", "0.bias", "2.weight", "2.bias"], names
assert all(p.requires_grad for p in net.parameters()), \
    f"every Parameter requires gradients, got {[p.requires_grad for p in net.parameters()]}"
net.eval()
assert not any(m.training for m in net.modules()), \
    f"after eval() no module is training, got training = {[m.training for m in net.modules()]}"
net.train()
assert all(m.training for m in net.modules()), \
    f"after train() every module is training, got training = {[m.training for m in net.modules()]}"
tied = Sequential(Linear(2, 2), Linear(2, 2))
tied[1].weight = tied[0].weight
assert len(tied.parameters()) == 3, f"got len(tied.parameters()) = {len(tied.parameters())!r}"

# %% nbgrader={"grade": true, "grade_id": "test-layers-xor-inference", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
"""The course design's Phase 1 milestone runs as written: a Sequential built from a list (or from arguments) runs XOR inputs written as integer lists."""
xor_input = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
net = Sequential([Linear(2, 4), ReLU(), Linear(4, 1)])
output = net(xor_input)  # works without training
assert output.shape == (4, 1), f"Sequential([Linear(2, 4), ReLU(), Linear(4, 1)]) on (4, 2) inputs gave shape {output.shape}, expected (4, 1)"
assert output.dtype == np.float32, f"the output should be float32 (integer lists become float32), got {output.dtype}"
names = [name for name, _ in net.named_parameters()]
assert names == ["0.weight", "0.bias", "2.weight", "2.bias"], f"a list-built Sequential names its parameters {names}"
same = Sequential(net[0], net[1], net[2])
assert np.array_equal(same(xor_input).data, output.data), \
    f"Sequential(a, b, c) gave {same(xor_input).data.ravel()}, Sequential([a, b, c]) {output.data.ravel()}"
hidden = np.maximum(np.array(xor_input) @ net[0].weight.data.T + net[0].bias.data, 0)
expected = hidden @ net[2].weight.data.T + net[2].bias.data
assert np.allclose(output.data, expected, atol=1e-6), f"net(xor_input) gave {output.data.ravel()}, expected {expected.ravel()}"

# %% nbgrader={"grade": true, "grade_id": "test-layers-state-dict", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
"""state_dict round-trips; a mismatched one is refused without changing the model."""
a, b = Sequential(Linear(4, 3), Linear(3, 2)), Sequential(Linear(4, 3), Linear(3, 2))
b.load_state_dict(a.state_dict())
x = Tensor(np.ones((1, 4), dtype=np.float32))
assert np.allclose(a(x).data, b(x).data), f"got a(x).data = {a(x).data!r}; b(x).data = {b(x).data!r}"
before = b.state_dict()
bad = a.state_dict()
bad["1.weight"] = np.zeros((5, 5), dtype=np.float32)
try:
    b.load_state_dict(bad)
    raise AssertionError("a wrong shape should be refused")
except ValueError as error:
    assert "1.weight" in str(error), f"got str(error) = {str(error)!r}"
    assert "(5, 5)" in str(error), f"got str(error) = {str(error)!r}"
changed = [k for k, v in b.state_dict().items() if not np.array_equal(before[k], v)]
assert not changed, f"nothing may change on error, but {changed} changed"
try:
    b.load_state_dict({"0.weight": before["0.weight"]})
    raise AssertionError("missing keys should be refused")
except KeyError as error:
    assert "0.bias" in str(error), f"got str(error) = {str(error)!r}"

# %% [markdown]
# ## Memory and performance analysis
#
# Parameters are the memory that does not depend on the batch; activations
# are the memory that does. Count both for the MLP above and time its
# forward pass as the batch grows.

# %%
from tinytorch.profiler import measure, format_bytes

n_params = sum(p.size for p in mlp.parameters())
print(f"parameters: {n_params} numbers = {format_bytes(4 * n_params)}")
for batch in (1, 64, 1024):
    x = Tensor(np.random.default_rng(0).standard_normal((batch, 784)).astype(np.float32))
    m = measure(mlp, x, repeat=5, label=f"forward, batch {batch}")
    print(f"{m}   {m.seconds / batch * 1e6:7.2f} µs per example")

# %% [markdown]
# ### Matrix multiplication is O(N³)
#
# A Linear layer is one matrix product: `(N, N) @ (N, N)` does `N³`
# multiply-adds. Double `N` and the work grows 8×. Time `Tensor @ Tensor` as
# `N` grows and fit the exponent `k` in `time ∝ Nᵏ` (the slope of the
# log-log line):

# %%
sizes = (256, 384, 512, 768, 1024)
rng_mm = np.random.default_rng(0)
times = []
for N in sizes:
    a = Tensor(rng_mm.standard_normal((N, N)).astype(np.float32))
    times.append(measure(Tensor.__matmul__, a, a, repeat=5).seconds)
    print(f"N = {N:4d}: {times[-1] * 1e3:7.2f} ms, {2 * N ** 3 / times[-1] / 1e9:6.1f} GFLOP/s")
exponent = np.polyfit(np.log(sizes), np.log(times), 1)[0]
print(f"fitted: time grows like N^{exponent:.2f} (the arithmetic: N^3)")

# %% [markdown]
# The fit lands below 3 when the smaller products do not yet keep the CPU
# busy (the fixed cost of a call, more cores used for larger products); at
# large sizes the cubic term wins. Either way doubling a layer's width
# multiplies its compute by about 8 for a square product — 4 for one matrix
# with a fixed batch (`(B, N) @ (N, N)`: `B·N²`).
#
# ### Parameter memory grows with the square of the width
#
# `Linear(n, n)` holds `n² + n` numbers. Build the same three-layer MLP at
# several widths, count its parameters and let the profiler see what
# building it allocates:

# %%
from tinytorch.profiler import Profile

previous = None
for width in (64, 128, 256, 512, 1024):
    with Profile(f"width {width}") as p:
        net = Sequential(Linear(width, width), ReLU(), Linear(width, width), ReLU(), Linear(width, 10))
    count = sum(q.size for q in net.parameters())
    growth = f"{count / previous:4.1f}x the previous" if previous else ""
    print(f"width {width:5d}: {count:9d} parameters = {format_bytes(4 * count):>9s} "
          f"(profiler peak while building: {format_bytes(p.peak_bytes):>9s}) {growth}")
    previous = count
del net

# %% [markdown]
# Each doubling of the width multiplies the parameters by almost exactly 4
# (the `n²` weights dominate the `n` biases), and with them the gradients and
# the optimizer's buffers (modules 07 and 11). The profiler's peak is larger
# than the parameters themselves: it also counts the temporaries made while
# initialising them.

# %% [markdown]
# ## Comparison with PyTorch
#
# Copy a `torch.nn.Sequential`'s weights into ours through `state_dict`: the
# names match, so the outputs must too.

# %%
from tinytorch.profiler import torch_if_installed

torch = torch_if_installed("04_layers")

if torch is not None:
    reference = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    mlp.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((64, 784)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    print("max difference:", np.abs(mlp(Tensor(x)).data - expected).max())
    print(measure(mlp, Tensor(x), repeat=20, label="tinytorch forward, batch 64"))
    with torch.no_grad():
        print(measure(reference, torch.from_numpy(x), repeat=20, label="torch forward, batch 64"))

# %% [markdown]
# ## Systems questions

# %% [markdown]
# **Q1.** How many bytes do the MLP's parameters take, and how many bytes of
# activations does one forward pass keep for a batch of 1024 (count the
# outputs of each layer)? Which one dominates as the batch grows?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-layers-memory", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# 50,890 parameters = 199 KB. Activations: 1024·(64 + 64 + 10) floats ≈
# 565 KB (plus the ReLU mask), growing linearly with the batch, so
# activations dominate for large batches.
# === END MARK SCHEME ===

# %% [markdown]
# **Q2.** Why does the time *per example* fall as the batch grows from 1 to
# 1024?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-layers-batching", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# Fixed per-call overhead (Python, allocation) is shared by the batch, and a
# matrix-matrix product reuses each weight for many rows (higher arithmetic
# intensity) where a matrix-vector product is memory bound.
# === END MARK SCHEME ===

# %% [markdown]
# **Q3.** `load_state_dict` checks every shape before copying anything. What
# would a user see later if it copied the good entries and then failed on a
# bad one?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q-layers-atomic", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# === BEGIN MARK SCHEME ===
# A model that is half old, half new weights: it runs without error but
# gives silently wrong predictions, and retrying is confusing. Validating
# first makes the load all-or-nothing.
# === END MARK SCHEME ===
