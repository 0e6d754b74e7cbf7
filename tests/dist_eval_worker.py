"""One rank of the 2-process evaluation test in test_protocols.py (launched by torchrun).

usage: python -m torch.distributed.run --nproc_per_node 2 tests/dist_eval_worker.py OUT_DIR
Evaluates the toy method on the toy data with the batches shared between the ranks and writes
this rank's records to OUT_DIR/rank<r>/records.csv (every rank computes all records) and the
number of images it translated to OUT_DIR/rank<r>/translated.txt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)

from eval_fakes import FakeMethod, ToyData, evaluate_toy, toy_cfg  # noqa: E402

from i2ibench.train import distributed  # noqa: E402
from i2ibench.report.records import write_records  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    distributed.init_distributed("cpu")
    rank = distributed.get_rank()
    method = FakeMethod()
    df = evaluate_toy(method, cfg=toy_cfg(batch_size=6), val=ToyData(k=3, n=5))
    write_records(out / f"rank{rank}", df)
    (out / f"rank{rank}" / "translated.txt").write_text(str(sum(b for _, b, _ in method.calls)))
    distributed.cleanup()


if __name__ == "__main__":
    main()
