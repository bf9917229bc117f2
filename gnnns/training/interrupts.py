"""How training stops before its end: Ctrl-C and SIGTERM deferred to a step boundary, and divergence."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gnnns.training.checkpointing import LAST

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training at a step boundary.

    Args:
        message (str): where training stopped.
        checkpoint (Path, optional): the checkpoint of that step (None without a run directory).
    """

    def __init__(self, message: str, checkpoint: Path | None = None):
        super().__init__(message)
        self.checkpoint = checkpoint


class InterruptMixin:
    """The :class:`~gnnns.training.trainer.Trainer`'s handling of SIGINT and SIGTERM: reads its ``run_dir``,
    ``dist``, ``_interrupted`` and ``_saved_at``."""

    @contextmanager
    def _deferred_interrupts(self) -> Iterator[None]:
        """While training, SIGINT and SIGTERM only raise a flag that the loop reads at the next
        step boundary; a second one stops at once. Without a run directory (nothing to save), or
        outside the main thread (where Python cannot handle signals), they act as usual."""
        if self.run_dir is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in INTERRUPT_SIGNALS}

        def handler(signum, frame):
            if self._interrupted is not None:
                raise KeyboardInterrupt
            self._interrupted = signum
            if self.dist.is_main:
                print(
                    f"\n{signal.Signals(signum).name}: finishing the current step, then writing a checkpoint "
                    "(press Ctrl-C again to stop at once)",
                    file=sys.stderr,
                    flush=True,
                )

        for sig in INTERRUPT_SIGNALS:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            self._interrupted = None

    def _raise_interrupted(self) -> None:
        epoch, steps = self._saved_at
        where = f"after epoch {epoch}" if steps == 0 else f"at epoch {epoch + 1}, step {steps}"
        path = self.run_dir / LAST
        raise TrainingInterrupted(f"training stopped {where}; checkpoint written to {path}", path)
