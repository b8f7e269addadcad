"""Module 10 (data), hidden memory budget: the DataLoader does not copy the dataset per epoch."""
import numpy as np
from otter.test_files import test_case

from ttgrade import peak_bytes, probe, within_budget

name = "10_data memory"
kind = "memory"

EXAMPLES, FEATURES, BATCH = 20000, 500, 500        # a 40 MB dataset
BATCH_BYTES = BATCH * FEATURES * 4


@probe
def epoch_peak(tt):
    from tinytorch.data import DataLoader, TensorDataset
    ds = TensorDataset(np.ones((20000, 500), dtype=np.float32), np.zeros(20000, dtype=np.int64))
    loader = DataLoader(ds, batch_size=500, shuffle=True, seed=0)

    def epoch():
        for xb, yb in loader:
            pass
    return peak_bytes(epoch)


@test_case(points=2)
def test_dataloader_does_not_copy_the_dataset():
    """One shuffled epoch over a 40 MB dataset in batches of 500: a few batches in memory, never the dataset."""
    within_budget(epoch_peak, budget=4 * BATCH_BYTES + 2**20, what="one shuffled epoch of a 40 MB dataset, batch 500")
