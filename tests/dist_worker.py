"""One rank of the 2-process gloo tests in test_distributed.py (launched by torchrun).

usage: python -m torch.distributed.run --nproc_per_node 2 tests/dist_worker.py OUT_DIR
Trains the toy method into OUT_DIR/straight (6 steps), and into OUT_DIR/paused: 3 steps, then
every generator scrambled (as in a new process), then resumed to 6. Saves this rank's final
states and the results of the collective helpers to OUT_DIR/<run>.rank<r>.pt for the test.
One launch for all of it: starting processes is the slow part on a loaded CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from engine_toys import ToyDataset, all_tensors, toy_config  # noqa: E402

from i2ibench.train import distributed  # noqa: E402
from i2ibench.train.engine import train  # noqa: E402
from i2ibench.seeding import seed_everything  # noqa: E402


def run(out: Path, name: str, max_steps: int | None = None):
    return train(toy_config(**{"train.sample_every": 3}), out / name, progress=False,
                 max_steps=max_steps, train_set=ToyDataset())


def main() -> None:
    out = Path(sys.argv[1])
    method = run(out, "straight")
    rank = distributed.get_rank()
    run(out, "paused", max_steps=3)
    seed_everything(12345 + rank)  # nothing from the first half may survive but the checkpoint
    resumed = run(out, "paused")
    torch.save({"tensors": all_tensors(resumed)}, out / f"paused.rank{rank}.pt")

    # uneven shares, as evaluators have when N is not a multiple of the world size
    mine = torch.arange((rank + 1) * 2 * 3, dtype=torch.float32).reshape(-1, 3) + 100 * rank
    gathered = distributed.all_gather_cat(mine)
    # a parameter with a gradient on one rank only (a head no image of the other rank used)
    layer = torch.nn.Linear(2, 1, bias=False)
    other = torch.nn.Linear(2, 1, bias=False)
    (layer if rank == 0 else other)(torch.ones(1, 2)).sum().mul(rank + 1).backward()
    distributed.average_gradients([layer, other])
    state = {"tensors": all_tensors(method), "gathered": gathered, "world": distributed.get_world_size(),
             "grad_layer": layer.weight.grad, "grad_other": other.weight.grad}
    torch.save(state, out / f"straight.rank{rank}.pt")
    distributed.cleanup()


if __name__ == "__main__":
    main()
