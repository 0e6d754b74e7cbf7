"""Shared test settings: one thread per test process (the CI machine has two cores) and
deterministic algorithms, so numbers are reproducible."""

import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("I2IBENCH_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed_everything():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
