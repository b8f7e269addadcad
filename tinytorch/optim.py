"""`tinytorch.optim`: the optimizers under PyTorch's names."""
from tinytorch.optimizers import SGD, Optimizer  # noqa: F401
from tinytorch.adam import Adam, AdamW  # noqa: F401
