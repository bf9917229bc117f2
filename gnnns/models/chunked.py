r"""Negative scores in row chunks, recomputed in the backward pass instead of stored.

Scoring ``k`` negatives of each of ``B`` positives reads the rows
:math:`C_{bj} = E_{c_{bj}}` of the entity table and scores them against each query,
:math:`s_{bj} = m(q_b, C_{bj})`. Gathered at once, :math:`C` is a ``[B, k, d]`` tensor (52 MB
for ``B = 1024``, ``k = 64`` and 100 complex coordinates); autograd keeps it for the backward
pass and writes a gradient of the same size, which it then scatters into ``[E, d]``. Once
:math:`C` is larger than the CPU's caches every one of these passes runs at memory speed.

:func:`chunked_match` takes the rows a chunk at a time, sized to stay in cache: the forward pass
scores each chunk and keeps nothing but the indices; the backward pass gathers each chunk again,
recomputes its scores with autograd, and adds
:math:`\partial s / \partial C` straight into the ``[E, d]`` gradient
(:math:`\nabla_E \mathrel{+}= \sum_{b, j} [c_{bj} = e]\, g_{bj}\, \partial s_{bj} / \partial C_{bj}`),
next to :math:`\partial s / \partial q`. The values and gradients are those of the one-shot
computation: the same operations on the same rows, only in a different grouping.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def cpu_chunk_elements(wait_policy: str | None) -> int:
    """The CPU chunk budget for OpenMP wait policy ``wait_policy`` (``OMP_WAIT_POLICY``).

    Each chunk runs a few small kernels. Threads that spin between kernels (OpenMP's default)
    make them cheap, and 2^18 elements (1 MB of float32) was fastest of 2^16, 2^18 and 2^20. With
    ``PASSIVE`` every kernel wakes sleeping threads, and 2^18 made a RotatE or ComplEx step
    slower than gathering all rows at once (0.54x to 0.83x as fast); 2^20 was 1.4x to 2.3x faster
    than 2^18 there (``benchmarks/results/candidate_scoring_k64_*.md``).
    """
    return 1 << 20 if (wait_policy or "").strip().upper() == "PASSIVE" else 1 << 18


CHUNK_ELEMENTS = {"cpu": cpu_chunk_elements(os.environ.get("OMP_WAIT_POLICY"))}
"""Gathered elements per chunk by device type: on the CPU :func:`cpu_chunk_elements` of this
process's wait policy. Other devices, whose memory is fast and whose kernel launches are not
free, take :data:`OTHER_DEVICES`."""
OTHER_DEVICES = 1 << 26


def chunk_rows(num_candidates: int, width: int, device: torch.device, elements: int | None = None) -> int:
    """Rows per chunk: ``elements`` (default by device) over ``num_candidates * width``, at least 1."""
    budget = elements if elements is not None else CHUNK_ELEMENTS.get(device.type, OTHER_DEVICES)
    return max(1, int(budget) // max(1, num_candidates * width))


def chunked_match(decoder: Any, query: Tensor, ent: Tensor, candidates: Tensor, elements: int | None = None) -> Tensor:
    """``decoder.match(query[:, None], ent[candidates])`` a chunk of rows at a time.

    Args:
        decoder: has ``match(query [b, 1, q], cand [b, k, d]) -> [b, k]``.
        query (Tensor): shape ``[B, q]``.
        ent (Tensor): the entity rows, shape ``[E, d]`` (a parameter, or an encoder's output).
        candidates (LongTensor): shape ``[B, k]``.
        elements (int, optional): gathered elements per chunk; None: :func:`chunk_rows`'s default.

    Returns:
        Tensor of shape ``[B, k]``; differentiable in ``query`` and ``ent`` (once).
    """
    rows = chunk_rows(candidates.size(1), ent.size(1), ent.device, elements)
    if rows >= candidates.size(0):
        return decoder.match(query.unsqueeze(1), dense_rows(ent, candidates))
    return _ChunkedMatch.apply(query, ent, candidates, decoder, rows)


def dense_rows(table: Tensor, index: Tensor) -> Tensor:
    """Rows ``index`` (any shape) of ``table``; the gradient is a dense ``[E, d]`` tensor."""
    # index_select gathers [B * k, d] rows about twice as fast as advanced indexing on CPU.
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.size(-1))


class _ChunkedMatch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query: Tensor, ent: Tensor, candidates: Tensor, decoder: Any, rows: int) -> Tensor:
        out = None
        for start in range(0, candidates.size(0), rows):
            part = slice(start, start + rows)
            scores = decoder.match(query[part].unsqueeze(1), dense_rows(ent, candidates[part]))
            if out is None:
                out = scores.new_empty(candidates.shape)
            out[part] = scores
        ctx.save_for_backward(query, ent, candidates)
        ctx.decoder, ctx.rows = decoder, rows
        # The backward pass recomputes the scores as the forward pass computed them (autocast
        # included: backward runs outside the caller's autocast context).
        kind = ent.device.type
        ctx.autocast = (kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        query, ent, candidates = ctx.saved_tensors
        want_query, want_ent = ctx.needs_input_grad[:2]
        grad_query = torch.empty_like(query) if want_query else None
        grad_ent = torch.zeros_like(ent) if want_ent else None
        for start in range(0, candidates.size(0), ctx.rows):
            part = slice(start, start + ctx.rows)
            index = candidates[part]
            kind, enabled, dtype = ctx.autocast
            with torch.enable_grad(), torch.autocast(kind, dtype=dtype, enabled=enabled):
                q = query[part].detach().requires_grad_(want_query)
                c = dense_rows(ent.detach(), index).requires_grad_(want_ent)
                scores = ctx.decoder.match(q.unsqueeze(1), c)
                inputs = [t for t, want in ((q, want_query), (c, want_ent)) if want]
                grads = list(torch.autograd.grad(scores, inputs, grad[part]))
            if want_query:
                grad_query[part] = grads.pop(0)
            if want_ent:
                grad_ent.index_add_(0, index.reshape(-1), grads.pop(0).reshape(-1, ent.size(1)))
        return grad_query, grad_ent, None, None, None
