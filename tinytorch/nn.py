"""`tinytorch.nn`: the layers, activations and losses under PyTorch's names."""
from tinytorch.layers import GELU, Linear, Module, Parameter, ReLU, Sequential, Sigmoid, Softmax, Tanh  # noqa: F401
from tinytorch.losses import BCELoss, CrossEntropyLoss, MSELoss  # noqa: F401
from tinytorch.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d  # noqa: F401
