"""Module 09 (spatial), hidden memory budget: Conv2d forward stays within a bound of its im2col buffer."""
import numpy as np
from otter.test_files import test_case

from ttgrade import peak_bytes, probe, within_budget

name = "09_spatial memory"
kind = "memory"

N, C, H, W_, OUT, K = 32, 8, 28, 28, 16, 3
IM2COL = N * H * W_ * C * K * K * 4          # one float32 column per output pixel (padding 1, stride 1)
OUTPUT = N * OUT * H * W_ * 4


@probe
def conv_peak(tt):
    from tinytorch.spatial import Conv2d
    tt.manual_seed(0)
    layer = Conv2d(8, 16, 3, padding=1)
    x = tt.Tensor(np.ones((32, 8, 28, 28), dtype=np.float32))
    with tt.no_grad():
        layer(x)  # warm up
        return peak_bytes(lambda: layer(x))


@test_case(points=2)
def test_conv2d_forward_memory():
    """Conv2d(8, 16, 3, padding=1) forward on (32, 8, 28, 28): at most 2.5 im2col buffers plus 2 outputs."""
    within_budget(conv_peak, budget=int(2.5 * IM2COL + 2 * OUTPUT),
                  what="Conv2d(8, 16, 3, padding=1) forward on (32, 8, 28, 28)")
