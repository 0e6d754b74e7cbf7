"""Two-process gloo training on CPU through torchrun: identical weights on both ranks, only
rank 0 writes, the rank-0 checkpoint loads, a paused and resumed run is bit-identical, and
the collective helpers (gradient averaging, feature gather) give the right numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from i2ibench.train import distributed
from i2ibench.train.checkpoint import list_checkpoints, load_checkpoint

HERE = Path(__file__).resolve().parent


def torchrun(*args: str, timeout: float = 600) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def load(path: Path):
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    torchrun(str(HERE / "dist_worker.py"), str(out))
    return out


def test_both_ranks_end_with_identical_weights(two_rank_runs):
    r0, r1 = (load(two_rank_runs / f"straight.rank{r}.pt") for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["tensors"].keys() == r1["tensors"].keys()
    assert any(k.startswith("nets_ema.") for k in r0["tensors"])
    different = [k for k in r0["tensors"] if not torch.equal(r0["tensors"][k], r1["tensors"][k])]
    assert not different, different[:5]


def test_rank0_checkpoint_loads_and_holds_both_ranks_rng(two_rank_runs):
    run = two_rank_runs / "straight"
    assert [s for s, _ in list_checkpoints(run)] == [2, 4, 6]
    ckpt = load_checkpoint(run / "checkpoints/ckpt_00000006.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # seed + rank
    r0 = load(two_rank_runs / "straight.rank0.pt")["tensors"]
    w = "nets.generator.out.weight"
    assert torch.equal(ckpt["method"]["nets"]["generator.out.weight"], r0[w])


def test_only_rank0_writes(two_rank_runs):
    run = two_rank_runs / "straight"
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 1  # one writer process
    steps = [line.split(",")[0] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(steps) == len(set(steps)) == 6
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "latent_00000003.png", "latent_00000006.png", "reference_00000003.png", "reference_00000006.png"]


def test_paused_and_resumed_two_rank_run_is_bit_identical(two_rank_runs):
    for rank in (0, 1):
        a = load(two_rank_runs / f"straight.rank{rank}.pt")["tensors"]
        b = load(two_rank_runs / f"paused.rank{rank}.pt")["tensors"]
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, (rank, different[:5])


def test_all_gather_cat_and_gradient_averaging(two_rank_runs):
    expected = torch.cat([torch.arange(6.0).reshape(2, 3), torch.arange(12.0).reshape(4, 3) + 100])
    for rank in (0, 1):
        r = load(two_rank_runs / f"straight.rank{rank}.pt")
        assert torch.equal(r["gathered"], expected)
        # rank 0 had grad 1*[1,1] on `layer` only, rank 1 had 2*[1,1] on `other` only
        assert torch.equal(r["grad_layer"], torch.full((1, 2), 0.5))
        assert torch.equal(r["grad_other"], torch.full((1, 2), 1.0))


def test_single_process_helpers_are_identities():
    t = torch.randn(3, 2)
    assert distributed.all_gather_cat(t) is t
    assert distributed.all_reduce_mean({"a": 1.5}) == {"a": 1.5}
    assert distributed.all_gather_object({"x": 1}) == [{"x": 1}]
    assert distributed.get_rank() == 0 and distributed.get_world_size() == 1 and distributed.is_main_process()


def _fashion_available() -> bool:
    try:
        from i2ibench.data.catalog import available, get_spec

        return available(get_spec("fashion10"))
    except Exception:
        return False


@pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST files not installed")
def test_torchrun_cli_stargan2_smoke(tmp_path):
    out = tmp_path / "run"
    torchrun("-m", "i2ibench.cli", "run", "-m", "stargan2", "-d", "fashion10", "--preset", "smoke",
             "--out", str(out), "--no-eval", "--no-progress", "--set", "train.total_iters=2")
    ckpt = load_checkpoint(out / "checkpoints/ckpt_00000002.pt")
    assert ckpt["world_size"] == 2 and ckpt["step"] == 2
    from i2ibench.config import load_run_config

    assert load_run_config(out / "config.yaml").method == "stargan2"
