"""Module 04 (layers), hidden correctness: Linear on 3-d inputs and without bias, nested Sequential,
parameter names and order, state_dict round trips, train/eval reaching every submodule."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "04_layers correctness"
kind = "correctness"

X3 = np.random.default_rng(41).normal(size=(2, 5, 3)).astype(np.float32)


@test_case(name="test_linear_on_batched_sequences", points=2)
@same_as_reference(X3)
@probe
def linear_3d(tt, x):
    """Linear applies to the last dimension of a (2, 5, 3) input, with and without bias."""
    from tinytorch.layers import Linear
    tt.manual_seed(4)
    with_bias, without = Linear(3, 4), Linear(3, 2, bias=False)
    return {"Linear(3, 4) on (2, 5, 3)": with_bias(tt.Tensor(x)).data,
            "Linear(3, 2, bias=False)": without(tt.Tensor(x)).data}


@test_case(name="test_nested_sequential_names_and_output", points=2)
@same_as_reference(X3)
@probe
def nested(tt, x):
    """A Sequential inside a Sequential: output, parameter names ("1.1.weight") and order."""
    from tinytorch.layers import Linear, ReLU, Sequential, Tanh
    tt.manual_seed(5)
    model = Sequential(Linear(3, 6), Sequential(ReLU(), Linear(6, 6), Tanh()), Linear(6, 1))
    names = [name for name, _ in model.named_parameters()]
    shapes = [tuple(p.shape) for p in model.parameters()]
    return {"output": model(tt.Tensor(x)).data, "parameter names": names, "parameter shapes": [list(s) for s in shapes]}


@test_case(name="test_state_dict_round_trip", points=2)
@same_as_reference(X3)
@probe
def state_round_trip(tt, x):
    """state_dict copies the parameters; load_state_dict restores them and rejects a wrong state."""
    from tinytorch.layers import Linear, Sequential, Sigmoid
    tt.manual_seed(6)
    source = Sequential(Linear(3, 4), Sigmoid(), Linear(4, 2))
    tt.manual_seed(7)
    target = Sequential(Linear(3, 4), Sigmoid(), Linear(4, 2))
    state = source.state_dict()
    target.load_state_dict(state)
    state["0.weight"][...] = 0  # the state dict must be a copy, not the live parameters
    try:
        target.load_state_dict({"0.weight": np.zeros((3, 4), np.float32)})
        strict = "accepted"
    except Exception as error:  # noqa: BLE001
        strict = type(error).__name__
    return {"keys": list(source.state_dict()), "output after loading": target(tt.Tensor(x)).data,
            "source unchanged by editing its state_dict": source(tt.Tensor(x)).data, "strict load of a bad state": strict}


@test_case(name="test_train_and_eval_reach_every_submodule", points=1)
@same_as_reference()
@probe
def modes(tt):
    """eval() and train() set the mode of every module, nested ones included."""
    from tinytorch.layers import Linear, ReLU, Sequential
    model = Sequential(Linear(2, 2), Sequential(ReLU(), Linear(2, 2)))
    model.eval()
    after_eval = [m.training for m in model.modules()]
    model.train()
    return {"after eval()": after_eval, "after train()": [m.training for m in model.modules()]}
