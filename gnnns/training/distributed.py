"""Training across processes with :mod:`torch.distributed`: the process group, the step module
that :class:`~torch.nn.parallel.DistributedDataParallel` wraps, reductions and sharded evaluation.

A run launched by ``torchrun --nproc_per_node=N -m gnnns train ...`` finds ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT`` in its environment;
:func:`process_group` turns them into a process group (``gloo`` on CPU, ``nccl`` on CUDA) and a
:class:`Distributed` handle, which is all the trainer needs to know about the other processes.
Without those variables the handle is :data:`SINGLE` and every collective is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from gnnns.data import KnowledgeGraph
from gnnns.evaluation import evaluate
from gnnns.models import KGCModel


@dataclass(frozen=True)
class Distributed:
    """This process's place in a distributed run, and the collectives the trainer uses.

    Every method is a collective when :attr:`enabled` (all processes must call it, in the same
    order) and returns its input unchanged otherwise.

    Args:
        rank (int): this process's index, ``0..world_size-1``. (default: 0)
        world_size (int): number of processes. (default: 1)
        local_rank (int): index on this machine (the CUDA device of an ``nccl`` run). (default: 0)
        backend (str, optional): ``"gloo"`` or ``"nccl"``; None without a process group.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether there are other processes to talk to."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """Where collective tensors live: the local GPU for ``nccl``, the CPU for ``gloo``."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def barrier(self) -> None:
        """Wait until every process has arrived here."""
        if self.enabled:
            dist.barrier(device_ids=[self.local_rank] if self.backend == "nccl" else None)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over processes (float64)."""
        return self._reduce(values, dist.ReduceOp.SUM)

    def max(self, values: list[float]) -> list[float]:
        """Element-wise maxima over processes (float64)."""
        return self._reduce(values, dist.ReduceOp.MAX)

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """For each flag, whether it is set on any process."""
        return tuple(v > 0 for v in self.max([float(bool(f)) for f in flags]))

    def _reduce(self, values: list[float], op) -> list[float]:
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=op)
        return tensor.tolist()

    def gather(self, obj: object) -> list | None:
        """Every process's ``obj`` on rank 0 (in rank order), None elsewhere; ``[obj]`` alone."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: object) -> object:
        """Rank 0's ``obj`` on every process."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    @classmethod
    def current(cls) -> Distributed:
        """The handle of the process group already initialised in this process (or :data:`SINGLE`)."""
        if not (dist.is_available() and dist.is_initialized()):
            return SINGLE
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        return cls(rank, world_size, local_rank, str(dist.get_backend()))


SINGLE = Distributed()
"""The handle of a run in one process."""


@contextmanager
def process_group(device: str = "cpu") -> Iterator[Distributed]:
    """The process group of a ``torchrun`` launch for the duration of the block.

    With ``WORLD_SIZE > 1`` in the environment it initialises :mod:`torch.distributed` from the
    launcher's variables (``env://``), with backend ``nccl`` when ``device`` is CUDA (process
    ``LOCAL_RANK`` on ``cuda:LOCAL_RANK``) and ``gloo`` otherwise, and destroys it when the block
    ends, also on an error or Ctrl-C. A group initialised by the caller (tests, notebooks) is used
    as it is and left alone; without either, the block gets :data:`SINGLE`.

    Args:
        device (str): the run's device, ``"cpu"`` or ``"cuda"``/``"cuda:N"``. (default: ``"cpu"``)
    """
    if dist.is_available() and dist.is_initialized():
        yield Distributed.current()
        return
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield SINGLE
        return
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size} asks for a distributed run, but torch.distributed is unavailable")
    cuda = str(device).startswith("cuda")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start at most one process per GPU (--nproc_per_node)"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield Distributed.current()
        # Leave together: a rank that tears its connections down while another still reads
        # from them can abort that one at exit (SIGABRT, "terminate called without an active
        # exception", seen once in a fresh-clone test run). Not on an error: the others may be gone.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def rank_device(device: str, distributed: Distributed) -> str:
    """The device of this process: ``cuda:LOCAL_RANK`` for a CUDA run over several processes."""
    if distributed.enabled and str(device).startswith("cuda"):
        return f"cuda:{distributed.local_rank}"
    return str(device)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s sampling randomness: ``seed`` itself on rank 0, so that rank 0
    draws what a single-process run draws, and a well-separated stream on the others."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed) % (1 << 64), int(rank)]).generate_state(1, np.uint32)[0])


class StepLoss(nn.Module):
    r"""One training step's loss as a module, so that DistributedDataParallel can wrap it.

    DDP reduces gradients of the parameters its module owns, and prepares that reduction in the
    module's forward; a step here is sampler + scoring + loss, not one call of the model, so this
    module holds the model and the loss and its :meth:`forward` runs the whole step's forward
    (``compute(batch) -> loss``). The negative sampler is deliberately not a submodule: score-aware
    samplers call the unwrapped model under :func:`torch.no_grad`, and a sampler with learned
    state (an adversarial generator, an NSCaching cache) is updated by itself, on each process.

    Args:
        model (KGCModel): the model (its parameters are averaged across processes).
        loss (nn.Module): the loss (any parameters of it too).
        compute (callable): ``compute(batch) -> Tensor``, the scalar loss of a batch.
    """

    def __init__(self, model: KGCModel, loss: nn.Module, compute: Callable[[object], Tensor]):
        super().__init__()
        self.model = model
        self.loss = loss
        self.compute = compute

    def forward(self, batch) -> Tensor:
        return self.compute(batch)


def data_parallel(module: StepLoss, distributed: Distributed) -> nn.Module:
    r"""``module`` wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (itself when alone).

    Gradients are averaged over processes (DDP's default), so :math:`W` processes with mean-reduced
    losses over :math:`B/W` triples each compute the gradient of one process's mean over :math:`B`.

    ``find_unused_parameters`` is False for shallow models: every step gathers rows of the entity
    and relation tables and runs every decoder weight, so each parameter gets a gradient (a dense
    one with zero rows, or a sparse one) and DDP need not search the autograd graph. It is True for
    GNN encoders, whose layers can go without a gradient when a sampled subgraph leaves them no
    edges (R-GCN composes only the relations present); a wrong False there would stop training
    with DDP's "expected to have finished reduction" error, and the search costs little next to
    a GNN step.

    Args:
        module (StepLoss): the step module.
        distributed (Distributed): this process's place in the run.
    """
    if not distributed.enabled:
        return module
    cuda = distributed.backend == "nccl"
    return nn.parallel.DistributedDataParallel(
        module,
        device_ids=[distributed.local_rank] if cuda else None,
        output_device=distributed.local_rank if cuda else None,
        find_unused_parameters=module.model.graph is not None,
    )


def evaluate_split(
    model: KGCModel,
    kg: KnowledgeGraph,
    split: str,
    batch_size: int,
    progress: bool,
    distributed: Distributed,
) -> dict:
    """Filtered metrics of ``split`` on every process, each ranking its share of the queries
    (:func:`gnnns.evaluation.evaluate` with ``rank`` and ``world_size``; the ranks are gathered,
    so every process returns the metrics of the whole split).

    Args:
        model (KGCModel): the unwrapped model.
        kg (KnowledgeGraph): the graph.
        split (str): ``"valid"`` or ``"test"``.
        batch_size (int): queries scored at once.
        progress (bool): a progress bar (rank 0 only).
        distributed (Distributed): this process's place in the run.
    """
    progress = progress and distributed.is_main
    return evaluate(
        model, kg, split, batch_size, progress=progress, rank=distributed.rank, world_size=distributed.world_size
    )
