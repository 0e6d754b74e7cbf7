"""Wall time per evaluation phase, summed over the phase's occurrences.

The harness prints the phases at the end of every evaluation (``[eval] wall time: ...``);
``benchmarks/bench_eval.py`` reads the same ``PhaseTimer`` and groups its phases into
translation, features and metrics (``PHASE_GROUPS``).
"""

from __future__ import annotations

import contextlib
import time

# The harness's phases (wall seconds, ``time.perf_counter``).
REAL_FEATURES = "real features"      # Inception on real images (or their statistics cache)
TRANSLATION = "translation"          # the method's translate(), inputs and references read
FAKE_FEATURES = "fake features"      # Inception on the translations
OUTPUT_SCORES = "classifiers + LPIPS"  # domain/content classifier verdicts and LPIPS diversity of the translations
FAKE_CACHE = "fake-feature cache"    # reading and writing the cached fake features
METRICS = "metrics"                  # FID, KID, precision/recall, density/coverage, accuracy per group
BOOTSTRAP = "bootstrap intervals"
LABELS = "label quality"

# Which phases make up each part of an evaluation's cost.
PHASE_GROUPS = {
    "translation": (TRANSLATION,),
    "features": (REAL_FEATURES, FAKE_FEATURES, FAKE_CACHE),
    "metrics": (OUTPUT_SCORES, METRICS, BOOTSTRAP, LABELS),
}


class PhaseTimer:
    """``with timer("phase"): ...`` adds the block's wall seconds to ``timer.seconds["phase"]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

    def grouped(self) -> dict[str, float]:
        """Seconds per ``PHASE_GROUPS`` group; phases in no group under ``other``."""
        out = {g: sum(self.seconds.get(p, 0.0) for p in phases) for g, phases in PHASE_GROUPS.items()}
        known = {p for phases in PHASE_GROUPS.values() for p in phases}
        out["other"] = sum(v for p, v in self.seconds.items() if p not in known)
        return out

    def summary(self) -> str:
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())


def no_timer(phase: str) -> contextlib.AbstractContextManager:
    """A ``PhaseTimer`` stand-in that measures nothing."""
    return contextlib.nullcontext()
