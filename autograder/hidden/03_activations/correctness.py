"""Module 03 (activations), hidden correctness: extreme inputs (stability), other axes, 3-d inputs."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "03_activations correctness"
kind = "correctness"

EXTREME = np.array([[-1000.0, -88.0, -20.0, -1e-7, 0.0, 1e-7, 20.0, 88.0, 1000.0]], dtype=np.float32)
CUBE = np.random.default_rng(31).normal(scale=3.0, size=(2, 3, 4)).astype(np.float32)


@test_case(name="test_pointwise_activations_on_extreme_values", points=2)
@same_as_reference(EXTREME, atol=1e-6)
@probe
def pointwise(tt, x):
    """relu, sigmoid and gelu from -1000 to 1000: finite, no overflow warnings turned into nan."""
    from tinytorch.activations import gelu, relu, sigmoid
    t = tt.Tensor(x)
    return {"relu": relu(t).data, "sigmoid": sigmoid(t).data, "gelu": gelu(t).data}


@test_case(name="test_softmax_is_stable_and_respects_axis", points=2)
@same_as_reference(EXTREME, CUBE)
@probe
def softmaxes(tt, x, cube):
    """softmax of logits near 1000 (no nan), and over axes 0 and 1 of a 3-d tensor."""
    from tinytorch.activations import softmax
    return {"softmax of huge logits": softmax(tt.Tensor(x)).data,
            "softmax over axis 0": softmax(tt.Tensor(cube), axis=0).data,
            "softmax over axis 1 of a 3-d input": softmax(tt.Tensor(cube), axis=1).data}


SHAPES = [((6, 1, 1), (1, 5, 1), (1, 1, 4)), ((2, 0), (1,)), ((1,), ()), ((4, 3, 2, 1), (2, 7)), ((9, 8), (9, 8))]
MISFITS = [((2, 3), (3,), (3, 1, 2)), ((4, 1), (2, 3, 2)), ((0,), (2,)), ((5, 1, 1), (1, 4, 1), (3, 1, 2))]


@test_case(name="test_broadcast_shape_beyond_the_examples", points=2)
@same_as_reference(SHAPES, MISFITS)
@probe
def broadcasts(tt, shapes, misfits):
    """broadcast_shape of three or four-axis shapes, size 0, scalars; shapes that do not fit raise ValueError."""
    from tinytorch.activations import broadcast_shape
    refused = []
    for bad in misfits:
        try:
            broadcast_shape(*bad)
            refused.append("no error")
        except ValueError:
            refused.append("ValueError")
    return {"shapes": [list(broadcast_shape(*s)) for s in shapes], "misfits": refused}


FEATURES = np.random.default_rng(33).normal(size=(12, 4))
TARGETS = np.random.default_rng(34).normal(size=12) + 3.0


@test_case(name="test_best_linear_fit_with_an_offset", points=1)
@same_as_reference(FEATURES, TARGETS, atol=1e-8)
@probe
def linear_fit(tt, features, targets):
    """best_linear_fit on 12 noisy examples of 4 features around an offset of 3 (the bias must be fitted)."""
    from tinytorch.activations import best_linear_fit
    return {"predictions": np.asarray(best_linear_fit(features, targets), dtype=np.float64)}
