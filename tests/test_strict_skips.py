"""CI's strict skips (tests/conftest.py): a skip for a missing set-up fails, the listed ones stay skips."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SAMPLE = '''
import pytest

def test_data_missing():
    pytest.skip("Fashion-MNIST files not installed")

@pytest.mark.skipif(True, reason="root writes into read-only folders")
def test_root():
    pass

def test_passes():
    pass
'''


def _run(tmp_path, strict):
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "I2IBENCH_STRICT_SKIPS"}
    if strict:
        env["I2IBENCH_STRICT_SKIPS"] = "1"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


def test_without_the_switch_skips_are_skips(tmp_path):
    assert _run(tmp_path, strict=False).startswith("1 passed, 2 skipped")


def test_with_the_switch_a_missing_set_up_fails(tmp_path):
    summary = _run(tmp_path, strict=True)
    assert "1 failed" in summary and "1 passed" in summary and "1 skipped" in summary
