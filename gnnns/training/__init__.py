"""Training: the loop, checkpoints, several processes, and building a run from its config."""

from gnnns.training.distributed import Distributed, process_group
from gnnns.training.positive_weights import SubsamplingWeights
from gnnns.training.trainer import Trainer, TrainingDiverged, TrainingInterrupted

__all__ = ["Distributed", "SubsamplingWeights", "Trainer", "TrainingDiverged", "TrainingInterrupted", "process_group"]
