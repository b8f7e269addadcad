"""`tinytorch.nn`: the layers, activations and losses under PyTorch's names."""
from tinytorch.layers import GELU, Linear, Module, Parameter, ReLU, Sequential, Sigmoid, Softmax, Tanh  # noqa: F401
