"""`tinytorch.nn`: the layers, activations and losses under PyTorch's names."""
from tinytorch.layers import GELU, Linear, Module, Parameter, ReLU, Sequential, Sigmoid, Softmax, Tanh  # noqa: F401
from tinytorch.losses import BCELoss, CrossEntropyLoss, MSELoss  # noqa: F401
from tinytorch.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d  # noqa: F401
from tinytorch.attention import LearnedPositionalEncoding, SinusoidalPositionalEncoding  # noqa: F401
from tinytorch.transformer import (GPT, MLP, Dropout, Embedding, GPTConfig, LayerNorm, MultiHeadAttention,  # noqa: F401
                                   TransformerBlock, clip_grad_norm_)
