"""Shared test settings: one thread per test process (the CI machine has two cores) and
deterministic algorithms, so numbers are reproducible."""

import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("I2IBENCH_TEST_THREADS", "1")))

# Skips a machine may need whatever is installed: as root, read-only folders are writable, and
# not every kernel has /dev/full. Every other skip (missing data, browser, package) means the
# machine is not set up; with I2IBENCH_STRICT_SKIPS=1 (CI: .ci/run) such a skip fails the test,
# so a broken set-up cannot hide a test.
ALLOWED_SKIPS = ("root writes into read-only folders", "no /dev/full")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and os.environ.get("I2IBENCH_STRICT_SKIPS") and not hasattr(report, "wasxfail")):
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    if not any(allowed in reason for allowed in ALLOWED_SKIPS):
        report.outcome = "failed"
        report.longrepr = f"skipped under I2IBENCH_STRICT_SKIPS=1 (the machine is not set up): {reason}"


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


def run_cli(monkeypatch, capsys, *args):
    """Run ``i2ibench ARGS`` as the console script does; returns (exit code, stdout, stderr)."""
    import sys

    from i2ibench.cli.main import main

    monkeypatch.setattr(sys, "argv", ["i2ibench", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err
