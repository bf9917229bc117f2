"""How a training step gets its scores: from the whole graph, or from neighbour-sampled subgraphs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from gnnns.loaders.neighbor import triple_keys
from gnnns.models import KGCModel


class FullGraphScoring:
    r"""Scores from the encoder run on the whole training graph, once per step.

    Every score of a step (the sampler's, the loss's, the regulariser's) reuses one encoder
    output (:meth:`KGCModel.cached_embeddings`), so a GNN costs one forward and one backward pass
    over the graph per step; for an embedding table this is free.

    Args:
        model (KGCModel): the model; its :attr:`~KGCModel.graph` is the training graph.
        exclude_positives (bool): drop the batch's own positive edges from message passing for
            the step, so that no positive is predicted from its own edge. (default: False)
    """

    def __init__(self, model: KGCModel, exclude_positives: bool = False):
        self.model = model
        self.graph = model.graph
        self.exclude_positives = bool(exclude_positives) and self.graph is not None
        self._edge_keys: Tensor | None = None

    @contextmanager
    def step(self, positives: Tensor | None) -> Iterator[None]:
        """The scope of one training step on ``positives [B, 3]`` (None for 1-N batches)."""
        if self.exclude_positives and positives is not None:
            self.model.graph = self._without(positives)
        try:
            with self.model.cached_embeddings():
                yield
        finally:
            self.model.graph = self.graph

    def _without(self, positives: Tensor):
        graph = self.graph
        num_entities, num_relations = int(graph.num_nodes), self.model.num_relations
        if self._edge_keys is None:
            edges = torch.stack([graph.edge_index[0], graph.edge_type, graph.edge_index[1]], 1)
            self._edge_keys = triple_keys(edges, num_entities, num_relations)
        keep = ~torch.isin(self._edge_keys, triple_keys(positives, num_entities, num_relations))
        out = graph.clone()
        out.edge_index, out.edge_type = graph.edge_index[:, keep], graph.edge_type[keep]
        return out

    def score_candidates(self, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> Tensor:
        """The sampler's ``scorer``: ``[B, 3], [B, k], [B] -> [B, k]``."""
        return self.model.score_candidates(positives, entities, corrupt_head)

    def score_batch(
        self, positives: Tensor, entities: Tensor, corrupt_head: Tensor, shared: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Positive ``[B]`` and negative ``[B, k]`` scores (see :meth:`KGCModel.score_batch`)."""
        return self.model.score_batch(positives, entities, corrupt_head, shared=shared)

    @property
    def score_all(self):
        """``score_all(kept, relation, predict_head) -> [Q, E]`` for the negative diagnostics."""
        return self.model.score_all


class SubgraphScoring:
    r"""Scores from neighbour-sampled subgraphs, for graphs too large for a full-graph pass.

    Each scoring call embeds exactly the entities it scores: the seeds are the heads and tails of
    the positives *and* the candidate entities, the subgraph is sampled around them by
    :class:`~gnnns.loaders.NeighborSubgraphs` across every relation and both directions, and the
    step's positive edges are left out of it, so that no positive is predicted from its own
    edge. A score-aware sampler's candidates are scored the same way (on a subgraph of their
    own, without gradients). Outside a step the model's graph is the whole training graph again,
    which evaluation embeds layer by layer.

    Args:
        model (KGCModel): the model, with a GNN encoder.
        subgraphs (NeighborSubgraphs): the neighbour sampler over the training triples.
    """

    def __init__(self, model: KGCModel, subgraphs):
        self.model = model
        self.graph = model.graph
        self.subgraphs = subgraphs
        self._positives: Tensor | None = None

    @contextmanager
    def step(self, positives: Tensor | None) -> Iterator[None]:
        if positives is None:
            raise ValueError("neighbour-sampled training needs triple batches (negative sampling), not 1-N batches")
        self._positives = positives
        try:
            yield
        finally:
            self._positives = None
            self.model.graph = self.graph

    def _localise(self, positives: Tensor, entities: Tensor) -> tuple[Tensor, Tensor]:
        """Sample the subgraph of the scored entities; return ``positives`` and ``entities`` in its node ids."""
        seeds = torch.unique(torch.cat([positives[:, 0], positives[:, 2], entities.reshape(-1)]))
        exclude = self._positives if self._positives is not None else positives
        self.model.graph = self.subgraphs(seeds, exclude=exclude)
        # The subgraph's first nodes are the seeds in their (sorted) order.
        local = positives.clone()
        local[:, [0, 2]] = torch.searchsorted(seeds, positives[:, [0, 2]])
        return local, torch.searchsorted(seeds, entities.contiguous())

    def score_candidates(self, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> Tensor:
        local, candidates = self._localise(positives, entities)
        return self.model.score_candidates(local, candidates, corrupt_head)

    def score_batch(
        self, positives: Tensor, entities: Tensor, corrupt_head: Tensor, shared: bool = False
    ) -> tuple[Tensor, Tensor]:
        local, candidates = self._localise(positives, entities)
        return self.model.score_batch(local, candidates, corrupt_head, shared=shared)

    @property
    def score_all(self):
        """None: scoring against every entity would embed the whole graph every few batches, so
        the diagnostics estimate hardness from a sample of entities (:meth:`score_candidates`)."""
        return None
