"""An encoder and a decoder, scored in the three shapes training and evaluation need."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnns.config import NEGATIVE_SCORING
from gnnns.models.chunked import chunked_match
from gnnns.models.chunked import dense_rows as _dense_rows
from gnnns.models.decoders.base import Decoder
from gnnns.models.encoders.embedding import embedding_dropout
from gnnns.models.encoders.graph_input import global_ids


class KGCModel(nn.Module):
    r"""Knowledge-graph completion model: ``encoder(graph) -> embeddings``, ``decoder`` scores.

    Every score is computed as ``decoder.match(decoder.query(kept, r, side), candidate)``, so a
    batch of positives and its ``k`` negatives share one query per row and the ``[B, k, d]``
    candidate embeddings are only gathered, never combined with the relation.

    With ``reciprocal=True`` the model holds :math:`2R` relations and answers a head query
    :math:`(?, r, t)` as the tail query :math:`(t, r + R, ?)` (Lacroix et al., 2018), which is how
    1-N training works and what ConvE-style decoders need.

    :attr:`graph` is what the encoder reads: the training graph for a GNN encoder (a subgraph
    during a neighbour-sampled step), :obj:`None` for an embedding table. In evaluation mode
    without gradients, an encoder with an ``inference`` method computes every entity's embedding
    layer by layer in bounded memory. Within :meth:`cached_embeddings` the encoder runs once and
    every score of the block (the sampler's, the loss's, the regulariser's) reuses its output.

    :meth:`gather` (``gather(table, index) -> rows``) is how every row is read: with a sparse
    encoder (``EmbeddingEncoder(sparse=True)``) through :func:`torch.nn.functional.embedding`, so
    that the gradient holds only the rows a batch touched. An encoder whose ``lookup_dropout()``
    returns rates (``EmbeddingEncoder(dropout_mask="lookup")`` in training) has every looked-up
    row dropped with a mask of its own, and the candidate table of :meth:`score_all` with one
    mask per call.

    Args:
        encoder (nn.Module): ``encoder(graph) -> (entity_emb [E, De], relation_emb [R', Dr])``.
        decoder (Decoder): the scoring function.
        num_relations (int): :math:`R`, relations of the data (without inverses).
        reciprocal (bool): answer head queries through inverse relations. (default: False)
        compile (bool): fuse the scoring kernels with :func:`torch.compile`; on CPU this
            roughly triples the throughput of distance decoders. (default: False)
        entity_bias (int): with a positive number of entities :math:`E`, the model holds a
            free per-entity bias :math:`b_e` and appends it to the encoder's embeddings as a last
            column, for decoders that read their candidates' bias there (ConvE) behind an
            encoder whose outputs are all computed (a GNN). (default: 0, no bias)
        negative_scoring (str): how :meth:`score_batch` scores a batch's ``[B, k]`` negatives.
            ``"rows"`` gathers each row's ``k`` candidates (``[B, k, d]``, in cache-sized chunks
            where it can) and matches them against the row's query. ``"distinct"`` gathers the
            batch's :math:`U` distinct candidates once (``[U, d]``), scores every query against
            all of them with :meth:`~gnnns.models.decoders.Decoder.match_all` (one matrix product
            for bilinear decoders and :math:`L_2` TransE) and picks each row's ``k`` scores from
            the ``[B, U]`` result: LibKGE's ``batch`` implementation, which it uses for more than
            30 negatives. The values are the same up to rounding; with per-lookup dropout each
            distinct candidate is dropped once per batch, as in LibKGE, instead of once per row.
            ``"triple"`` scores every positive and every negative as a triple of its own: the
            query's rows are looked up (and, with per-lookup dropout, dropped out) again for each
            of the ``k`` negatives, ``[B, k, d]`` queries, so no two scores share a dropout mask:
            LibKGE's ``triple`` implementation, which its TransE always uses. Without per-lookup
            dropout, and with a decoder whose query draws nothing (ConvE's dropouts and batch norms
            do in training), the values are those of ``"rows"``, and triple scores them as rows.
            Otherwise a decoder with a costly query (RESCAL's :math:`d \times d` relation rows,
            ConvE's convolution) builds it :math:`k + 1` times per positive. (default: ``"rows"``)
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: Decoder,
        num_relations: int,
        reciprocal: bool = False,
        compile: bool = False,
        entity_bias: int = 0,
        negative_scoring: str = "rows",
    ):
        super().__init__()
        if negative_scoring not in NEGATIVE_SCORING:
            raise ValueError(f"negative_scoring must be one of {list(NEGATIVE_SCORING)}, got {negative_scoring!r}")
        self.negative_scoring = negative_scoring
        self.encoder = encoder
        self.decoder = decoder
        self.num_relations = int(num_relations)
        self.reciprocal = bool(reciprocal)
        self.graph = None
        self.entity_bias = nn.Parameter(torch.zeros(entity_bias, 1)) if entity_bias > 0 else None
        self._cached: tuple[Tensor, Tensor] | None = None
        # Sparse embedding tables (ogbl-wikikg2 scale) are read with F.embedding, whose gradient
        # lists only the rows a batch touched; indexing would give a dense [E, d] gradient.
        self.sparse = bool(getattr(encoder, "sparse", False))
        if self.sparse and compile:
            raise ValueError("compile=True and sparse embedding gradients do not combine; choose one")
        self.gather = _sparse_rows if self.sparse else _dense_rows
        self._train_kernel = _candidate_scores
        self._all_kernel = decoder.match_all
        self._compiled_shapes: dict[bool, tuple] = {}
        if compile:
            self._train_kernel = torch.compile(_candidate_scores, dynamic=False)
            self._all_kernel = torch.compile(decoder.match_all, dynamic=False)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        self.decoder.reset_parameters()
        if self.entity_bias is not None:
            nn.init.zeros_(self.entity_bias)

    def _apply(self, fn, recurse: bool = True):
        # `.to(device)` moves the graph the encoder reads along with the parameters.
        if self.graph is not None:
            self.graph = self.graph.apply(fn)
        return super()._apply(fn, recurse)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Entity ``[N, De]`` and relation ``[R', Dr]`` embeddings from the encoder (row ``i``:
        node ``i`` of :attr:`graph`, which is entity ``i`` unless the graph is a subgraph)."""
        if self._cached is not None:
            return self._cached
        graph = self.graph
        inference = getattr(self.encoder, "inference", None)
        if inference is not None and graph is not None and not self.training and not torch.is_grad_enabled():
            ent, rel = inference(graph)
        else:
            ent, rel = self.encoder(graph)
        if self.entity_bias is not None:
            bias = self.entity_bias if graph is None else self.entity_bias[global_ids(graph)]
            ent = torch.cat([ent, bias], -1)
        return ent, rel

    @contextmanager
    def cached_embeddings(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Run the encoder once, now (with gradients if they are enabled), and let every score
        computed inside the block reuse its output: one GNN pass per training step."""
        self._cached = None
        self._cached = self.embeddings()
        try:
            yield self._cached
        finally:
            self._cached = None

    def _relation_and_side(self, relation: Tensor, corrupt_head: Tensor) -> tuple[Tensor, Tensor | bool]:
        if not self.reciprocal:
            return relation, corrupt_head
        relation = torch.where(corrupt_head, relation + self.num_relations, relation)
        # A plain False lets the decoder build only the tail query instead of both and a select.
        return relation, False

    def _random_query(self) -> bool:
        """Whether the decoder's query draws masks or batch statistics now (ConvE's dropouts and batch
        norms in training): triple scoring then builds a query of its own for every negative even
        without per-lookup dropout."""
        if not self.training:
            return False
        return any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) or (isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0)
            for m in self.decoder.modules()
        )

    def _row_dropout(self) -> tuple[float, float] | None:
        """The encoder's per-lookup dropout rates ``(entity, relation)``, or :obj:`None`."""
        rates = getattr(self.encoder, "lookup_dropout", None)
        return rates() if rates is not None else None

    def score(self, triples: Tensor) -> Tensor:
        """Scores of triples, shape ``[N, 3] -> [N]``."""
        ent, rel = self.embeddings()
        h, r, t = triples.unbind(1)
        rates = self._row_dropout()
        rows = self.gather if rates is None else _dropping(self.gather, rel, rates)
        h, r, t = rows(ent, h), rows(rel, r), rows(ent, t)
        return self.decoder(h, r, t)

    def score_candidates(self, positives: Tensor, entities: Tensor, corrupt_head: Tensor) -> Tensor:
        """Scores of the triples made by replacing one side of each positive.

        This is the ``scorer`` that score-aware samplers receive. It scores in evaluation mode:
        a sampler sees the decoder's scores without dropout noise, and its candidates do not move
        BatchNorm's running statistics (nor meet BatchNorm's need for more than one row). Inside a
        GNN training step the entity embeddings are the step's own encoder output
        (:meth:`cached_embeddings`), computed in training mode, dropout included: encoding the
        graph a second time for the sampler would double the step's cost.

        Args:
            positives (Tensor): shape ``[B, 3]``.
            entities (Tensor): replacement entities, shape ``[B, k]``.
            corrupt_head (Tensor): shape ``[B]``; True replaces the head.

        Returns:
            Tensor of shape ``[B, k]``.
        """
        was_training = self.training
        self.eval()  # nothing is dropped: triple scoring is scored as rows (score_batch)
        try:
            _, neg = self.score_batch(positives, entities, corrupt_head)
        finally:
            self.train(was_training)
        return neg

    def score_batch(
        self, positives: Tensor, entities: Tensor, corrupt_head: Tensor, shared: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Scores of positives ``[B]`` and of their negatives ``[B, k]`` with one query per row.

        With ``shared=True`` every row of ``entities`` holds the same ``k`` entities (in-batch
        negatives): they are scored as one product of the ``[B, q]`` queries with ``[k, d]``
        candidate embeddings, without gathering ``[B, k, d]``.
        """
        ent, rel_emb = self.embeddings()
        kept = torch.where(corrupt_head, positives[:, 2], positives[:, 0])
        true = torch.where(corrupt_head, positives[:, 0], positives[:, 2])
        relation, side = self._relation_and_side(positives[:, 1], corrupt_head)
        rows = self.gather
        rates = self._row_dropout()
        if rates is not None:
            rows = _dropping(rows, rel_emb, rates)
        # Entity rows are looked up in one call per batch: each lookup of a dense table costs a
        # zero-filled [E, d] gradient in the backward pass (84 MB for WN18RR at d = 512).
        if shared or self.negative_scoring == "distinct":
            # One product of the queries with candidate rows: the row every query shares, or the
            # batch's distinct candidates, from whose [B, U] scores each row picks its own.
            distinct, column = (entities[0], None) if shared else torch.unique(entities, return_inverse=True)
            kept_rows, true_rows, candidate_rows = _looked_up(rows, ent, kept, true, distinct)
            query = self.decoder.query(kept_rows, rows(rel_emb, relation), side)
            neg = self.decoder.match_all(query, candidate_rows)
            return self.decoder.match(query, true_rows), neg if column is None else neg.gather(1, column)
        if self.negative_scoring == "triple" and (rates is not None or self._random_query()):
            n, k = entities.shape
            # Every negative is a triple of its own: its query is built from rows looked up (and
            # dropped out) for it alone, flattened so that any decoder's query sees a plain batch.
            # One lookup ordered [queries' entities | answers] makes each half one slice, not a copy.
            flat = rows(ent, torch.cat([kept, kept.repeat_interleave(k), true, entities.reshape(-1)]))
            own_rows, answer_rows = flat.split([n * (k + 1)] * 2)
            if rates is not None and rates[1] > 0:
                relation_rows = rows(rel_emb, torch.cat([relation, relation.repeat_interleave(k)]))
            else:  # undropped relation rows are the same for a row's k + 1 triples: repeat one lookup
                relation_rows = rows(rel_emb, relation)
                relation_rows = torch.cat([relation_rows, relation_rows.repeat_interleave(k, 0)])
            if not isinstance(side, bool):
                side = torch.cat([side, side.repeat_interleave(k)])
            scores = self.decoder.match(self.decoder.query(own_rows, relation_rows, side), answer_rows)
            return scores[:n], scores[n:].view(n, k)
        if rates is None and self.gather is _dense_rows and self._train_kernel is _candidate_scores:
            # Not compiled: score the negatives in cache-sized chunks (gnnns.models.chunked).
            kept_rows, true_rows = _looked_up(rows, ent, kept, true)
            query = self.decoder.query(kept_rows, rows(rel_emb, relation), side)
            return self.decoder.match(query, true_rows), chunked_match(self.decoder, query, ent, entities)
        kernel = self._train_kernel if rates is None else _candidate_scores
        if kernel is not _candidate_scores:
            # Compile the steady-state shape of each grad mode (the training step, and a
            # score-aware sampler's no-grad candidate scoring); a short last batch runs eagerly
            # instead of triggering another compilation.
            shape = (tuple(entities.shape), ent.requires_grad and torch.is_grad_enabled())
            mode = shape[1]
            self._compiled_shapes.setdefault(mode, shape)
            if shape != self._compiled_shapes[mode]:
                kernel = _candidate_scores
        return kernel(self.decoder, ent, rel_emb, kept, relation, side, true, entities, rows)

    def score_all(self, kept: Tensor, relation: Tensor, predict_head: bool | Tensor, chunk_size: int = 0) -> Tensor:
        """Scores of each query against every entity.

        Args:
            kept (Tensor): the known entity of each query, shape ``[Q]``.
            relation (Tensor): shape ``[Q]`` (ids below :math:`R`).
            predict_head (bool or BoolTensor ``[Q]``): True asks ``(?, r, kept)``.
            chunk_size (int): score this many queries at a time (0: all at once).

        Returns:
            Tensor of shape ``[Q, E]``.
        """
        ent, rel_emb = self.embeddings()
        side = torch.as_tensor(predict_head, device=kept.device).expand(kept.shape)
        relation, side = self._relation_and_side(relation, side)
        # index_select: its backward, an index_add_, is faster on CPU than the accumulating
        # index_put_ of advanced indexing (about 1.2x for RESCAL's 1,024 x 128 x 128 relation rows).
        kept_rows, relation_rows = _dense_rows(ent, kept), _dense_rows(rel_emb, relation)
        rates = self._row_dropout()
        if rates is not None:
            # LibKGE's order: the query's rows, then the candidate table, each drawn apart.
            kept_rows, relation_rows = (
                embedding_dropout(kept_rows, rates[0]),
                embedding_dropout(relation_rows, rates[1]),
            )
            ent = embedding_dropout(ent, rates[0])
        query = self.decoder.query(kept_rows, relation_rows, side)
        return self.score_queries(query, ent, chunk_size)

    def score_queries(self, query: Tensor, ent: Tensor, chunk_size: int = 0) -> Tensor:
        """Scores of precomputed queries ``[Q, q]`` against entity embeddings ``[E, d]`` -> ``[Q, E]``."""
        if chunk_size <= 0 or query.size(0) <= chunk_size:
            return self._all_kernel(query, ent)
        out = []
        for q in query.split(chunk_size):
            n = q.size(0)
            if n < chunk_size:  # pad so that a compiled kernel sees one shape only
                q = torch.cat([q, q.new_zeros(chunk_size - n, q.size(1))])
            out.append(self._all_kernel(q, ent)[:n])
        return torch.cat(out)

    def forward(self, triples: Tensor) -> Tensor:
        return self.score(triples)


def _candidate_scores(
    decoder: Decoder,
    ent: Tensor,
    rel: Tensor,
    kept: Tensor,
    relation: Tensor,
    side: Tensor,
    true: Tensor,
    candidates: Tensor,
    rows=None,
) -> tuple[Tensor, Tensor]:
    rows = rows or _dense_rows
    kept_rows, true_rows, candidate_rows = _looked_up(rows, ent, kept, true, candidates)
    query = decoder.query(kept_rows, rows(rel, relation), side)
    pos = decoder.match(query, true_rows)
    neg = decoder.match(query.unsqueeze(1), candidate_rows)
    return pos, neg


def _looked_up(rows, table: Tensor, *indices: Tensor) -> list[Tensor]:
    """``[rows(table, index) for index in indices]`` in one lookup: the backward pass of a dense table
    then fills and adds one ``[E, d]`` gradient instead of one per index. Per-lookup dropout draws each
    row's mask apart either way."""
    flat = rows(table, torch.cat([index.reshape(-1) for index in indices]))
    parts = flat.split([index.numel() for index in indices])
    return [part.view(*index.shape, table.size(-1)) for part, index in zip(parts, indices, strict=True)]


def _dropping(rows, relation_table: Tensor, rates: tuple[float, float]):
    """``rows`` whose every looked-up row is dropped out with a mask of its own: at the relation rate
    for rows of ``relation_table``, at the entity rate for any other table."""
    p_ent, p_rel = rates

    def dropped(table: Tensor, index: Tensor) -> Tensor:
        return embedding_dropout(rows(table, index), p_rel if table is relation_table else p_ent)

    return dropped


def _sparse_rows(table: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` of ``table`` with a sparse gradient holding only those rows."""
    return F.embedding(index, table, sparse=True)
