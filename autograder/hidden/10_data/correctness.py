"""Module 10 (data), hidden correctness: DataLoader lengths, seeded shuffles and batches, IDX parsing
of other dtypes and shapes, and its errors."""
import numpy as np
from otter.test_files import test_case

from ttgrade import probe
from ttgrade.cases import same_as_reference

name = "10_data correctness"
kind = "correctness"

X = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
Y = np.arange(23)


@test_case(name="test_dataloader_lengths_and_batches", points=2)
@same_as_reference(X, Y)
@probe
def loader(tt, x, y):
    """23 examples: len with and without drop_last, ordered batches, seeded shuffles that differ per epoch."""
    from tinytorch.data import DataLoader, TensorDataset
    ds = TensorDataset(x, y)
    plain, dropped = DataLoader(ds, batch_size=5), DataLoader(ds, batch_size=5, drop_last=True)
    shuffled = DataLoader(ds, batch_size=4, shuffle=True, seed=11)
    return {"len": [len(plain), len(dropped), len(DataLoader(ds, batch_size=23)), len(DataLoader(ds, batch_size=100))],
            "batches, in order": [b[1].data for b in plain], "batches, drop_last": [b[0].data for b in dropped],
            "shuffled epoch 1": [b[1].data for b in shuffled], "shuffled epoch 2": [b[1].data for b in shuffled]}


@test_case(name="test_idx_parsing", points=2)
@same_as_reference()
@probe
def idx_files(tt):
    """IDX files of int32 and uint8, and malformed ones (wrong magic, truncated, trailing bytes)."""
    import struct

    from tinytorch.data import mnist_arrays, parse_idx
    ints = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    blob = struct.pack(">BBBB", 0, 0, 0x0C, 3) + struct.pack(">III", 2, 3, 4) + ints.tobytes()
    vector = struct.pack(">BBBB", 0, 0, 0x08, 1) + struct.pack(">I", 5) + bytes(range(5))
    errors = []
    for bad in [b"\x01\x00\x08\x01" + struct.pack(">I", 5) + bytes(5), vector[:-1], vector + b"\x00"]:
        try:
            parse_idx(bad)
            errors.append("no error")
        except Exception as error:  # noqa: BLE001
            errors.append(type(error).__name__)
    images = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 2, 28, 28) + bytes(i % 256 for i in range(2 * 784))
    labels = struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 2) + bytes([7, 3])
    pair = mnist_arrays(images, labels)
    return {"int32 3-d": parse_idx(blob), "uint8 vector": parse_idx(vector), "errors": errors,
            "mnist_arrays": (pair[0], pair[1])}
