"""Module 09 (spatial), hidden correctness: convolution with stride, padding and a non-square kernel,
overlapping pooling windows, values and gradients against the reference."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "09_spatial correctness"
kind = "correctness"

R = np.random.default_rng(91)
X = R.normal(size=(3, 2, 9, 7)).astype(np.float32)
W = R.normal(size=(4, 2, 3, 2)).astype(np.float32)
BIAS = R.normal(size=(4,)).astype(np.float32)


@test_case(name="test_conv2d_stride_padding_non_square_kernel", points=3)
@same_as_reference(X, W, BIAS, rtol=1e-4, atol=1e-4)
@probe
def convolution(tt, x, w, b):
    """conv2d with stride (2, 1), padding (1, 2) and a 3x2 kernel: output and all three gradients."""
    from tinytorch.spatial import conv2d
    xs, ws, bs = (tt.Tensor(a, requires_grad=True) for a in (x, w, b))
    out = conv2d(xs, ws, bs, stride=(2, 1), padding=(1, 2))
    (out * out).sum().backward()
    return {"output": out.data, "grad of x": xs.grad, "grad of weight": ws.grad, "grad of bias": bs.grad}


@test_case(name="test_pooling_with_overlapping_windows", points=2)
@same_as_reference(X, rtol=1e-5)
@probe
def pooling(tt, x):
    """max_pool2d 3x3 stride 2 (windows overlap: gradients add) and avg_pool2d 2x3 stride (2, 1)."""
    from tinytorch.spatial import avg_pool2d, max_pool2d
    a, b = tt.Tensor(x, requires_grad=True), tt.Tensor(x, requires_grad=True)
    m = max_pool2d(a, 3, stride=2)       # overlapping windows
    v = avg_pool2d(b, (2, 3), stride=(2, 1))
    (m * m).sum().backward()
    (v * 2).sum().backward()
    return {"max pool": m.data, "grad through max pool": a.grad, "avg pool": v.data, "grad through avg pool": b.grad}


@test_case(name="test_layer_classes", points=1)
@same_as_reference(X, rtol=1e-4, atol=1e-5)
@probe
def layers(tt, x):
    """Conv2d, MaxPool2d, AvgPool2d and Flatten as layers in a Sequential."""
    from tinytorch.layers import Sequential
    from tinytorch.spatial import AvgPool2d, Conv2d, Flatten, MaxPool2d
    tt.manual_seed(9)
    model = Sequential(Conv2d(2, 3, (3, 2), stride=1, padding=1), MaxPool2d(2), AvgPool2d(2, stride=1), Flatten())
    out = model(tt.Tensor(x))
    return {"Conv2d -> MaxPool2d -> AvgPool2d -> Flatten": out.data}
