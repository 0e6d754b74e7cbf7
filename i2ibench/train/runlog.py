"""What a training run reports as it goes: progress bar, TensorBoard scalars, JSONL loss log."""

from __future__ import annotations

import json
import time
from pathlib import Path

from i2ibench.fileio import write_text
from i2ibench.train.rundir import LOG_FILE, TB_DIR, truncate_log


class RunLog:
    """Progress bar, TensorBoard and JSONL loss log (rank 0; silent elsewhere)."""

    def __init__(self, out_dir: Path, start: int, stop: int, desc: str, active: bool, progress: bool):
        self.active = active
        self.bar = None
        self.tb = None
        self.jsonl = None
        if not active:
            return
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=stop, initial=start, desc=desc, dynamic_ncols=True, unit="it")
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(out_dir / TB_DIR), purge_step=start if start > 0 else None)
        log_path = out_dir / LOG_FILE
        if start > 0:
            truncate_log(log_path, start)
        else:
            write_text(log_path, "")
        # Append-only: one flushed line per log step; a kill can cut only the last line,
        # which _truncate_log drops on resume.
        self.jsonl = open(log_path, "a")
        self.t_start = time.perf_counter()

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def scalars(self, step: int, losses: dict[str, float], it_per_s: float) -> None:
        if not self.active:
            return
        for k, v in losses.items():
            self.tb.add_scalar(f"loss/{k}", v, step)
        self.tb.add_scalar("speed/it_per_s", it_per_s, step)
        row = {"step": step, **{k: round(v, 6) for k, v in losses.items()}, "it_per_s": round(it_per_s, 4),
               "elapsed_s": round(time.perf_counter() - self.t_start, 2)}
        self.jsonl.write(json.dumps(row) + "\n")
        self.jsonl.flush()
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)

    def note(self, text: str) -> None:
        if not self.active:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        if self.jsonl is not None:
            self.jsonl.close()
