"""Negative scores in row chunks: the same values and gradients as scoring all rows at once."""

import pytest
import torch

from gnnns.data import KnowledgeGraph
from gnnns.models import DECODERS, build_model, chunked
from gnnns.models.chunked import chunk_rows, chunked_match


def graph(num_entities=12, num_relations=3, n=60):
    g = torch.Generator().manual_seed(0)
    triples = torch.stack(
        [torch.randint(num_entities, (n,), generator=g), torch.randint(num_relations, (n,), generator=g),
         torch.randint(num_entities, (n,), generator=g)], 1,
    )  # fmt: skip
    return KnowledgeGraph(triples, num_entities=num_entities, num_relations=num_relations)


def test_chunk_rows_divides_the_element_budget():
    cpu = torch.device("cpu")
    assert chunk_rows(64, 200, cpu, elements=1 << 18) == (1 << 18) // 12800 == 20
    assert chunk_rows(4096, 2000, cpu, elements=1 << 18) == 1  # never zero rows
    assert chunk_rows(64, 200, cpu) == chunk_rows(64, 200, cpu, elements=chunked.CHUNK_ELEMENTS["cpu"])


@pytest.mark.parametrize("name", list(DECODERS))
def test_values_and_gradients_equal_the_one_shot_computation(name):
    kg = graph()
    torch.manual_seed(0)
    model = build_model(name, kg, 8, reciprocal=name == "conve").double()
    model.eval()  # no dropout: the two computations must see the same numbers
    ent, rel = model.embeddings()
    positives = kg.train[:10]
    side = torch.zeros(10, dtype=torch.bool)
    # repeated candidates (12 entities, 10 x 7 draws): their gradients must add up
    candidates = torch.randint(kg.num_entities, (10, 7))

    def run(score):
        ent_leaf = ent.detach().clone().requires_grad_()
        query = model.decoder.query(ent_leaf[positives[:, 0]], rel.detach()[positives[:, 1]], side)
        scores = score(query, ent_leaf)
        weights = torch.randn(scores.shape, generator=torch.Generator().manual_seed(1), dtype=scores.dtype)
        (scores * weights).sum().backward()
        return scores.detach(), ent_leaf.grad

    def one_shot(query, ent_leaf):
        return model.decoder.match(query.unsqueeze(1), ent_leaf[candidates])

    # 3 rows a chunk (10 = 3 + 3 + 3 + 1): elements = 3 rows x 7 candidates x width
    width = ent.size(1)
    expected, expected_grad = run(one_shot)
    got, got_grad = run(lambda q, e: chunked_match(model.decoder, q, e, candidates, elements=3 * 7 * width))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        query = model.decoder.query(ent[positives[:, 0]], rel[positives[:, 1]], side)
        torch.testing.assert_close(chunked_match(model.decoder, query, ent, candidates, elements=1), expected)


def test_gradient_of_one_input_alone():
    torch.manual_seed(0)
    model = build_model("distmult", graph(), 4).double()
    ent = model.encoder.entity.weight.detach()
    candidates = torch.randint(12, (5, 3))
    query = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    chunked_match(model.decoder, query, ent, candidates, elements=3).sum().backward()
    # d/dq sum_j <q, e_j> = sum_j e_j
    torch.testing.assert_close(query.grad, ent[candidates].sum(1))
    table = ent.clone().requires_grad_()
    chunked_match(model.decoder, query.detach(), table, candidates, elements=3).sum().backward()
    expected = torch.zeros_like(ent).index_add_(0, candidates.reshape(-1), query.detach().repeat_interleave(3, 0))
    torch.testing.assert_close(table.grad, expected)


@pytest.mark.parametrize("name", ["complex", "rotate", "transe"])
def test_score_batch_chunks_and_trains_as_the_triple_scores_say(monkeypatch, name):
    kg = graph()
    torch.manual_seed(0)
    model = build_model(name, kg, 6).double()
    positives = kg.train[:9]
    side = torch.tensor([True, False, False] * 3)
    candidates = torch.randint(kg.num_entities, (9, 5))
    calls = []
    original = chunked._ChunkedMatch.apply
    monkeypatch.setattr(chunked._ChunkedMatch, "apply", lambda *a: calls.append(a[-1]) or original(*a))
    monkeypatch.setitem(chunked.CHUNK_ELEMENTS, "cpu", 2 * 5 * model.encoder.entity.weight.size(1))
    pos, neg = model.score_batch(positives, candidates, side)
    assert calls == [2]  # two rows a chunk
    (pos.sum() + (neg * torch.arange(45, dtype=neg.dtype).view(9, 5)).sum()).backward()
    chunked_grad = model.encoder.entity.weight.grad.clone()
    # the same from model.score on the corrupted triples themselves
    model.zero_grad()
    triples = positives.unsqueeze(1).repeat(1, 5, 1)
    triples[side, :, 0] = candidates[side]
    triples[~side, :, 2] = candidates[~side]
    by_triple = model.score(triples.view(-1, 3)).view(9, 5)
    torch.testing.assert_close(neg, by_triple.detach())
    (model.score(positives).sum() + (by_triple * torch.arange(45, dtype=neg.dtype).view(9, 5)).sum()).backward()
    torch.testing.assert_close(chunked_grad, model.encoder.entity.weight.grad)


def test_gradient_reaches_an_encoder_through_a_computed_table():
    torch.manual_seed(0)
    model = build_model("complex", graph(), 4).double()
    base = torch.randn(12, 8, dtype=torch.float64, requires_grad=True)
    candidates = torch.randint(12, (6, 4))
    query = torch.randn(6, 8, dtype=torch.float64)
    chunked_match(model.decoder, query, torch.tanh(base), candidates, elements=4).sum().backward()
    # d/dbase sum <q_b, tanh(base)[c]> = (1 - tanh(base)^2) * sum of the queries that read each row
    reads = torch.zeros(12, 8, dtype=torch.float64).index_add_(0, candidates.reshape(-1), query.repeat_interleave(4, 0))
    torch.testing.assert_close(base.grad, (1 - torch.tanh(base.detach()) ** 2) * reads)


def test_the_cpu_chunk_budget_follows_the_openmp_wait_policy():
    import os
    import subprocess
    import sys

    from gnnns.models.chunked import cpu_chunk_elements

    assert cpu_chunk_elements(None) == cpu_chunk_elements("active") == 1 << 18
    assert cpu_chunk_elements("PASSIVE") == cpu_chunk_elements(" passive") == 1 << 20
    # Read from the environment when gnnns is imported.
    code = "from gnnns.models.chunked import CHUNK_ELEMENTS; print(CHUNK_ELEMENTS['cpu'])"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == 1 << 20
