"""tinytorch: a deep-learning framework built from scratch in NumPy, one course module at a time.

    import tinytorch as tt
    x = tt.Tensor([[1.0, 2.0]], requires_grad=True)
    model = tt.nn.Sequential(tt.nn.Linear(2, 8), tt.nn.ReLU(), tt.nn.Linear(8, 1))
"""
from tinytorch.threads import use_default_threads

use_default_threads()  # before NumPy is imported: its BLAS reads the thread count once, when loaded

from tinytorch.tensor import Tensor, arange, manual_seed, no_grad, ones, randn, tensor, zeros  # noqa: E402, F401
from tinytorch import (activations, adam, attention, autograd, data, generation, losses, nn, optim,  # noqa: E402, F401
                       optimizers, production, spatial, threads, training, transformer)

__version__ = "0.1.0"
