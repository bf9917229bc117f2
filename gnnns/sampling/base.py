"""The sampler interface every negative sampler implements."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnns.data import KnowledgeGraph
from gnnns.sampling.negatives import Negatives, Scorer


class NegativeSampler(nn.Module):
    r"""Base class: ``sampler(positives [B, 3], num_negatives, scorer=None) -> Negatives``.

    :meth:`forward` checks the input, chooses which side of each positive is corrupted
    (:meth:`corrupt_head`, by default a fair coin) and hands over to :meth:`sample`, which a
    subclass overrides when it needs more than independent draws (scores, caches, weights);
    simple samplers only implement :meth:`draw`. Wrappers (:class:`~gnnns.sampling.Filtered`,
    :class:`~gnnns.sampling.Mixture`, :class:`~gnnns.sampling.Curriculum`) call :meth:`sample`
    of the samplers they wrap with the sides they chose.

    With ``filtered=True`` any negative that is a known training triple is redrawn, all at once,
    up to ``max_rounds`` times; what is still a known positive after that stays and is counted in
    :attr:`stats` (``"false_negatives_left"``). Only training triples are used: valid/test
    triples are what evaluation measures, so a sampler must not see them.

    :attr:`stats` holds counters summed over the current epoch (for example how often a sampler
    fell back to uniform draws); :meth:`epoch_stats` returns them as rates and starts afresh.
    :meth:`set_progress` tells the sampler how far training is (a curriculum reads it).

    Args:
        kg (KnowledgeGraph): the training graph.
        filtered (bool): redraw negatives that are known training triples. (default: False)
        max_rounds (int): redraw rounds for ``filtered``. (default: 10)
        num_entities (int, optional): :math:`E` when ``kg`` is None (wrappers take it from the
            samplers they wrap).
    """

    def __init__(
        self,
        kg: KnowledgeGraph | None,
        filtered: bool = False,
        max_rounds: int = 10,
        num_entities: int | None = None,
    ):
        super().__init__()
        if kg is None and (num_entities is None or filtered):
            raise ValueError("a sampler without a graph needs num_entities and cannot filter known triples")
        self.num_entities = int(num_entities) if kg is None else kg.num_entities
        self.filtered = bool(filtered)
        self.max_rounds = int(max_rounds)
        self.index = kg.train_index() if filtered else None
        self.progress = 0.0
        self.stats: dict[str, float] = {}

    @classmethod
    def from_pyg(cls, data, **kwargs) -> NegativeSampler:
        """Build the sampler from a PyG ``Data(edge_index [2, N], edge_type [N], num_nodes)``
        whose edges are the training triples (``node_type`` [E], if present, gives entity types)."""
        from gnnns.sampling.pyg import knowledge_graph_from_data

        return cls(knowledge_graph_from_data(data), **kwargs)

    def forward(self, positives: Tensor, num_negatives: int, scorer: Scorer | None = None) -> Negatives:
        """Draw ``num_negatives`` corruptions of each positive.

        Args:
            positives (Tensor): shape ``[B, 3]``.
            num_negatives (int): :math:`k`.
            scorer (callable, optional): ``scorer(positives, entities, corrupt_head) -> [B, k]``;
                unused by score-blind samplers.

        Returns:
            Negatives: ``entities [B, k]``, ``corrupt_head [B]``, optional ``weight [B, k]``.
        """
        positives = _check_request(positives, num_negatives)
        corrupt_head = self.corrupt_head(positives)
        if positives.size(0) == 0:
            return _no_negatives(positives, num_negatives, corrupt_head)
        return self.sample(positives, int(num_negatives), corrupt_head, scorer)

    def both_sides(
        self,
        positives: Tensor,
        num_negatives: int,
        num_head_negatives: int | None = None,
        scorer: Scorer | None = None,
    ) -> tuple[Negatives, Negatives]:
        """Corrupt every positive on both sides: ``num_head_negatives`` new heads and
        ``num_negatives`` new tails, as LibKGE's negative sampling (its ``num_samples.s`` and
        ``num_samples.o``) and RotatE's alternating head and tail batches do.

        The sampler's own choice of sides (:meth:`corrupt_head`, Bernoulli's relation cardinality)
        is not used. A loss over both is usually the mean of the two sides' losses, each a mean
        over the ``B`` positives.

        Args:
            positives (Tensor): shape ``[B, 3]``.
            num_negatives (int): tail corruptions per positive.
            num_head_negatives (int, optional): head corruptions per positive; None: as many as tails.
            scorer (callable, optional): as in :meth:`forward`.

        Returns:
            (Negatives, Negatives): the head corruptions (``corrupt_head`` all True, entities
            ``[B, num_head_negatives]``), then the tail corruptions (all False, ``[B, num_negatives]``).
        """
        num_head_negatives = num_negatives if num_head_negatives is None else num_head_negatives
        positives = _check_request(positives, num_negatives)
        _check_request(positives, num_head_negatives)
        heads = torch.ones(positives.size(0), dtype=torch.bool, device=positives.device)
        if positives.size(0) == 0:
            return _no_negatives(positives, num_head_negatives, heads), _no_negatives(positives, num_negatives, ~heads)
        head_side = self.sample(positives, int(num_head_negatives), heads, scorer)
        return head_side, self.sample(positives, int(num_negatives), ~heads, scorer)

    def sample(
        self, positives: Tensor, num_negatives: int, corrupt_head: Tensor, scorer: Scorer | None = None
    ) -> Negatives:
        """Negatives for given sides: ``positives [B, 3]``, ``corrupt_head [B]`` -> ``entities [B, k]``."""
        entities = self.draw(positives, num_negatives, corrupt_head)
        if self.filtered:
            entities = self.redraw_known(positives, entities, corrupt_head)
        return Negatives(entities, corrupt_head)

    def corrupt_head(self, positives: Tensor) -> Tensor:
        """Which side to corrupt, shape ``[B]`` (True: head). Default: a fair coin per positive."""
        return torch.rand(positives.size(0), device=positives.device) < 0.5

    def draw(self, positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Tensor:
        """Replacement entities, shape ``[B, k]``."""
        raise NotImplementedError

    def redraw_known(self, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> Tensor:
        """Replace negatives that are known training triples by fresh draws, vectorised."""
        known = self.index.contains_corrupted(positives, entities, corrupt_head)
        for _ in range(self.max_rounds):
            if not bool(known.any()):
                break
            fresh = self.draw(positives, entities.size(1), corrupt_head)
            entities = torch.where(known, fresh, entities)
            known = self.index.contains_corrupted(positives, entities, corrupt_head)
        self.count(false_negatives_left=known.sum())
        return entities

    def set_progress(self, fraction: float) -> None:
        """Training progress in ``[0, 1]`` (epochs done / epochs planned), set by the trainer."""
        self.progress = min(max(float(fraction), 0.0), 1.0)

    def count(self, **values: float | Tensor) -> None:
        """Add to this epoch's counters in :attr:`stats`."""
        for key, value in values.items():
            self.stats[key] = self.stats.get(key, 0.0) + float(value)

    def epoch_stats(self) -> dict[str, float]:
        """This epoch's counters (a subclass may turn them into rates), then reset them."""
        stats, self.stats = dict(self.stats), {}
        return stats


def _check_request(positives: Tensor, num_negatives: int) -> Tensor:
    """Checks a request and returns ``positives`` as ``int64``: samplers build ``int64`` keys
    from ids (``(h R + r) E + t``), which narrower integers would wrap around silently."""
    if positives.dim() != 2 or positives.size(1) != 3:
        raise ValueError(f"positives must have shape [B, 3], got {list(positives.shape)}")
    if positives.is_floating_point() or positives.is_complex() or positives.dtype == torch.bool:
        raise TypeError(f"positives must hold integer ids (head, relation, tail), got dtype {positives.dtype}")
    if isinstance(num_negatives, bool) or int(num_negatives) != num_negatives or int(num_negatives) < 1:
        raise ValueError(f"num_negatives must be a whole number of at least 1, got {num_negatives}")
    return positives.long()


def _no_negatives(positives: Tensor, num_negatives: int, corrupt_head: Tensor) -> Negatives:
    """The answer to an empty batch, ``entities [0, k]``, whatever the sampler."""
    return Negatives(positives.new_empty((0, int(num_negatives))), corrupt_head)
