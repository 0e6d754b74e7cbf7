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


def registered_methods() -> list[str]:
    """Registered methods, without the toy methods that some test modules register for the
    engine's own tests (those are not products and lack the paper/cpu presets)."""
    import inspect
    from pathlib import Path

    from i2ibench.registry import get_method_class, list_methods

    tests_dir = Path(__file__).parent.resolve()
    return [n for n in list_methods()
            if tests_dir not in Path(inspect.getfile(get_method_class(n))).resolve().parents]
