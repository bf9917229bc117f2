"""Training: the loop, checkpoints, and building a run from its config."""

from gnnns.training.trainer import Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged"]
