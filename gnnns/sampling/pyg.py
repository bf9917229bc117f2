r"""Plug gnnns samplers into a plain PyTorch Geometric pipeline.

Three pieces, all plain tensors in and out:

* :func:`knowledge_graph_from_data` turns ``Data(edge_index, edge_type, num_nodes)`` into the
  :class:`~gnnns.data.KnowledgeGraph` a sampler is built from (the inverse of
  :meth:`KnowledgeGraph.to_pyg`).
* :func:`kge_scorer` lets a sampler see, and a loss score, a
  :class:`torch_geometric.nn.kge.KGEModel` (TransE, DistMult, ComplEx, RotatE): ``k`` negatives
  per positive from any gnnns sampler instead of ``KGEModel.random_sample``'s one uniform negative.
* :func:`link_negatives` turns a batch of supervision edges into relation-aware negatives and the
  seed nodes whose neighbourhoods a GNN encoder must see: the entities of the positives *and* of
  their negatives.

Recommended pipeline for a GNN encoder (one neighbour-sampling pass per batch)::

    from torch_geometric.loader import NeighborLoader

    sampler = BernoulliSampler(knowledge_graph_from_data(data))
    # input_nodes=None: calling the loader with node ids samples around exactly those nodes
    subgraphs = NeighborLoader(data, num_neighbors=[10, 5])
    for edge_ids in torch.randperm(data.num_edges).split(512):
        link = link_negatives(sampler, data.edge_index[:, edge_ids], data.edge_type[edge_ids], 16)
        sub = subgraphs(link.seed_nodes)          # sub.n_id[:S] == link.seed_nodes
        z = encoder(sub)[: sub.batch_size]        # one row per seed node, in seed order
        rel = link.positives[:, 1]
        pos = decoder(z[link.head_index], rel, z[link.tail_index])                     # [B]
        neg_head, neg_tail = link.negative_pairs()
        neg = decoder(z[neg_head], rel.unsqueeze(1).expand_as(neg_head), z[neg_tail])  # [B, k]

PyG's ``NeighborLoader`` needs ``pyg-lib`` or ``torch-sparse`` installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gnnns.data import KnowledgeGraph
from gnnns.sampling.negatives import Negatives, Scorer

if TYPE_CHECKING:
    from torch_geometric.data import Data
    from torch_geometric.nn.kge import KGEModel

    from gnnns.sampling.base import NegativeSampler


def knowledge_graph_from_data(data: Data, num_relations: int | None = None, name: str = "pyg") -> KnowledgeGraph:
    r"""The training graph of a homogeneous PyG ``Data`` with typed edges, as a :class:`KnowledgeGraph`.

    Edge :math:`j` becomes the triple ``(edge_index[0, j], edge_type[j], edge_index[1, j])``; every
    edge is a training triple (samplers only ever see training triples). A ``node_type [E]``
    attribute, if present, becomes the entity types, so type-aware samplers can use it. For a
    ``HeteroData`` use :meth:`KnowledgeGraph.from_hetero`, whose global ids are those of
    ``HeteroData.to_homogeneous()``.

    Args:
        data (torch_geometric.data.Data): with ``edge_index [2, N]``, ``edge_type [N]`` and
            ``num_nodes``.
        num_relations (int, optional): :math:`R`; by default ``1 + max(edge_type)``, which misses
            relations that have no edge in ``data``. (default: None)
        name (str): dataset name, for logs. (default: ``"pyg"``)

    Returns:
        KnowledgeGraph: ``train [N, 3]``, ``num_entities = data.num_nodes``, empty valid/test.
    """
    edge_index, edge_type = data.edge_index, getattr(data, "edge_type", None)
    if edge_type is None:
        raise ValueError(
            "knowledge_graph_from_data: data has no edge_type; expected Data(edge_index [2, N], "
            "edge_type [N], num_nodes) (a graph with a single relation can set edge_type = zeros(N))"
        )
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_type.shape != (edge_index.size(1),):
        raise ValueError(
            f"knowledge_graph_from_data: expected edge_index [2, N] and edge_type [N], got "
            f"{list(edge_index.shape)} and {list(edge_type.shape)}"
        )
    triples = torch.stack([edge_index[0], edge_type, edge_index[1]], dim=1).cpu()
    node_type = getattr(data, "node_type", None)
    entity_types = None
    if node_type is not None:
        entity_types = torch.stack([torch.arange(node_type.numel()), node_type.cpu().long()], dim=1)
    return KnowledgeGraph(
        triples, num_entities=data.num_nodes, num_relations=num_relations, entity_types=entity_types, name=name
    )


def kge_score(model: KGEModel, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> Tensor:
    r"""Scores of corrupted triples under a PyG KGE model, shape ``[B, k]`` (higher = more plausible).

    Row :math:`i`, column :math:`j` scores :math:`(e_{ij}, r_i, t_i)` where ``corrupt_head[i]`` is
    True and :math:`(h_i, r_i, e_{ij})` otherwise, through ``model(head_index, rel_type,
    tail_index)``. Every ``torch_geometric.nn.kge`` model returns higher-is-better scores
    (TransE :math:`-\lVert h + r - t\rVert_p`, DistMult and ComplEx the trilinear product, RotatE
    ``margin`` minus the distance), so this is a gnnns :data:`~gnnns.sampling.Scorer` as it is.
    Gradients flow, so the same call scores negatives for the loss.

    Args:
        model (KGEModel): any ``torch_geometric.nn.kge`` model.
        positives (Tensor): ``(head, relation, tail)``, shape ``[B, 3]``.
        entities (Tensor): replacement entities, shape ``[B, k]``.
        corrupt_head (Tensor): shape ``[B]``; True replaces the head, False the tail.

    Returns:
        Tensor: shape ``[B, k]``.
    """
    side = corrupt_head.unsqueeze(1)
    head = torch.where(side, entities, positives[:, :1])
    tail = torch.where(side, positives[:, 2:], entities)
    rel = positives[:, 1:2].expand_as(entities)
    # PyG's RotatE reduces over dims (1, 2) of its [N, 2, d] stack, so its forward only accepts
    # 1-D indices: flatten the [B, k] grid and fold the scores back.
    return model(head.reshape(-1), rel.reshape(-1), tail.reshape(-1)).view(entities.shape)


def kge_scorer(model: KGEModel) -> Scorer:
    r"""``scorer(positives [B, 3], entities [B, k], corrupt_head [B]) -> [B, k]`` for a PyG KGE model.

    Pass it to score-aware samplers (``sampler(positives, k, scorer=kge_scorer(model))``) and use it
    to score the negatives in the loss; see :func:`kge_score`. It materialises ``[B * k, d]``
    gathered embeddings, as PyG's ``forward`` does for ``B * k`` triples.

    Args:
        model (KGEModel): any ``torch_geometric.nn.kge`` model.
    """
    return partial(kge_score, model)


@dataclass
class LinkNegatives:
    """Positives, their negatives and the seed nodes a neighbour sampler must start from.

    Every entity id below is global (a row of the full graph); the ``*_index`` tensors locate
    entities within :attr:`seed_nodes`, i.e. within the first ``S`` nodes of a subgraph sampled
    from ``seed_nodes`` (PyG's ``NeighborLoader`` puts its seeds first, in the order given).

    Attributes:
        positives (LongTensor): ``(head, relation, tail)``, shape ``[B, 3]``.
        negatives (Negatives): ``entities [B, k]`` replacing the side ``corrupt_head [B]`` chose.
        seed_nodes (LongTensor): the distinct entities of positives and negatives, sorted, shape ``[S]``.
        head_index (LongTensor): position of each positive's head in ``seed_nodes``, shape ``[B]``.
        tail_index (LongTensor): position of each positive's tail in ``seed_nodes``, shape ``[B]``.
        negative_index (LongTensor): position of each negative entity in ``seed_nodes``, shape ``[B, k]``.
    """

    positives: Tensor
    negatives: Negatives
    seed_nodes: Tensor
    head_index: Tensor
    tail_index: Tensor
    negative_index: Tensor

    def negative_pairs(self) -> tuple[Tensor, Tensor]:
        """Positions in ``seed_nodes`` of the head and of the tail of every negative, ``[B, k]`` each."""
        side = self.negatives.corrupt_head.unsqueeze(1)
        head = torch.where(side, self.negative_index, self.head_index.unsqueeze(1))
        tail = torch.where(side, self.tail_index.unsqueeze(1), self.negative_index)
        return head, tail


def link_negatives(
    sampler: NegativeSampler,
    edge_label_index: Tensor,
    edge_type: Tensor,
    num_negatives: int,
    scorer: Scorer | None = None,
    n_id: Tensor | None = None,
) -> LinkNegatives:
    r"""Relation-aware negatives for a batch of supervision edges, and the seeds to sample around.

    The positives are :math:`(u_i, \rho_i, v_i)` with ``(u, v) = edge_label_index`` and
    :math:`\rho` = ``edge_type``; the sampler corrupts one side of each ``num_negatives`` times.
    The seeds are

    .. math::
        S = \{u_i\} \cup \{v_i\} \cup \{e_{ij}\},

    each once, so that a neighbour sampler started from them gives every entity a GNN must embed
    (positives' endpoints and negatives alike) its sampled neighbourhood.

    Two ways to get the supervision edges:

    * Recommended: draw edge ids yourself (``torch.randperm(num_edges).split(B)``), pass global
      ``edge_index[:, ids]`` and ``edge_type[ids]``, then call a ``NeighborLoader(data,
      num_neighbors)`` (``input_nodes=None``) on ``seed_nodes``: one sampling pass per batch.
    * From a ``LinkNeighborLoader`` batch (built with ``edge_label=edge_type`` and no
      ``neg_sampling``): pass ``batch.edge_label_index``, ``batch.edge_label`` and
      ``n_id=batch.n_id``. The batch's subgraph was sampled around the positives' endpoints only,
      so the negatives (mostly outside it) need a second pass from ``seed_nodes``; that second pass
      samples around the endpoints again, so the loader's own subgraph is wasted work. Use this
      path only when the batches come from an existing pipeline. ``LinkNeighborLoader``'s own
      ``neg_sampling`` draws uniform, relation-blind pairs, which is what this replaces.

    Args:
        sampler (NegativeSampler): any gnnns sampler, built from the graph's training triples.
        edge_label_index (Tensor): supervision edges ``(head, tail)``, shape ``[2, B]``; global
            ids, or ids local to a subgraph when ``n_id`` is given.
        edge_type (Tensor): relation of each supervision edge, integer, shape ``[B]``.
        num_negatives (int): :math:`k`.
        scorer (callable, optional): ``scorer(positives, entities, corrupt_head) -> [B, k]`` over
            global ids, for score-aware samplers; a GNN can score with embeddings cached from its
            last full or sampled pass. (default: None)
        n_id (Tensor, optional): global id of each local node, shape ``[N_sub]`` (a sampled
            batch's ``n_id``); maps ``edge_label_index`` to global ids first. (default: None)

    Returns:
        LinkNegatives: global positives ``[B, 3]``, negatives ``[B, k]``, ``seed_nodes [S]`` and the
        positions of heads, tails and negatives within it.
    """
    if edge_label_index.dim() != 2 or edge_label_index.size(0) != 2:
        raise ValueError(f"edge_label_index must have shape [2, B], got {list(edge_label_index.shape)}")
    batch_size = edge_label_index.size(1)
    if edge_type.shape != (batch_size,) or edge_type.is_floating_point():
        raise ValueError(
            f"edge_type must hold one integer relation per supervision edge, shape [{batch_size}], "
            f"got {list(edge_type.shape)} of dtype {edge_type.dtype}"
        )
    if n_id is not None:
        edge_label_index = n_id[edge_label_index]
    positives = torch.stack([edge_label_index[0], edge_type.long(), edge_label_index[1]], dim=1)
    negatives = sampler(positives, num_negatives, scorer)
    every = torch.cat([positives[:, 0], positives[:, 2], negatives.entities.reshape(-1)])
    seed_nodes, inverse = torch.unique(every, return_inverse=True)
    return LinkNegatives(
        positives=positives,
        negatives=negatives,
        seed_nodes=seed_nodes,
        head_index=inverse[:batch_size],
        tail_index=inverse[batch_size : 2 * batch_size],
        negative_index=inverse[2 * batch_size :].view(negatives.entities.shape),
    )
