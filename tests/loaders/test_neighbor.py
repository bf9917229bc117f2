import pytest
import torch

from gnnns.loaders.neighbor import NeighborSubgraphs, floyd_sample, local_index, symmetric_adjacency


def random_triples(num_entities, num_relations, num_triples, seed=0):
    g = torch.Generator().manual_seed(seed)
    heads = torch.randint(num_entities, (num_triples,), generator=g)
    tails = torch.randint(num_entities, (num_triples,), generator=g)
    rels = torch.randint(num_relations, (num_triples,), generator=g)
    triples = torch.stack([heads, rels, tails], 1)
    # A self-loop and a duplicated triple: the edge cases of dedupe and of exclusion.
    return torch.cat([triples, torch.tensor([[3, 0, 3]]), triples[:2]])


def two_hop_rows(triples, seeds):
    """Rows of every triple incident to a seed or to a 1-hop neighbour, by plain Python BFS."""
    rows = triples.tolist()
    frontier = set(seeds)
    hop1 = {i for i, (h, _, t) in enumerate(rows) if h in frontier or t in frontier}
    neighbours = {e for i in hop1 for e in (rows[i][0], rows[i][2])} - frontier
    hop2 = {i for i, (h, _, t) in enumerate(rows) if h in neighbours or t in neighbours}
    return hop1 | hop2


def global_edges(graph):
    """``(h, r, t)`` of every subgraph edge, mapped back to global ids."""
    h, t = graph.n_id[graph.edge_index]
    return torch.stack([h, graph.edge_type, t], 1)


def test_hand_made_path_takes_edges_within_two_undirected_hops():
    # 0 -> 1 <- 2 -> 3 -> 4: from seed 0, hop 1 reaches 1, hop 2 reaches 2 (against the arrow) and stops.
    triples = torch.tensor([[0, 0, 1], [2, 1, 1], [2, 0, 3], [3, 1, 4]])
    graph = NeighborSubgraphs(triples, 5, 2, num_neighbors=[-1, -1])(torch.tensor([0]))
    assert graph.e_id.tolist() == [0, 1]
    assert graph.n_id.tolist() == [0, 1, 2]
    assert graph.edge_index.tolist() == [[0, 2], [1, 1]]
    assert graph.edge_type.tolist() == [0, 1]


def test_full_fanout_equals_brute_force_two_hop_edges_and_is_consistent():
    triples = random_triples(60, 4, 90)
    seeds = torch.tensor([17, 3, 42, 8])
    graph = NeighborSubgraphs(triples, 60, 4, num_neighbors=[-1, -1])(seeds)
    assert set(graph.e_id.tolist()) == two_hop_rows(triples, seeds.tolist())
    assert graph.e_id.unique().numel() == graph.e_id.numel()
    assert torch.equal(graph.n_id[:4], seeds)
    assert graph.n_id.unique().numel() == graph.num_nodes
    assert torch.equal(global_edges(graph), triples[graph.e_id])
    assert graph.edge_type.max() < 4 and graph.edge_index.max() < graph.num_nodes


def test_excluded_triples_leave_the_subgraph_in_both_forms():
    triples = random_triples(60, 4, 90)
    seeds = torch.tensor([3, 0, 1, 2])
    # Row 0 is duplicated at the end: both copies must go. Row 5 is given as its reciprocal (t, r + R, h).
    h, r, t = triples[5].tolist()
    exclude = torch.cat([triples[[0, 90]], torch.tensor([[t, r + 4, h], [3, 0, 3]])])
    graph = NeighborSubgraphs(triples, 60, 4, num_neighbors=[-1, -1])(seeds, exclude=exclude)
    banned = {tuple(triples[i].tolist()) for i in (0, 5)} | {(3, 0, 3)}
    expected = {i for i in two_hop_rows(triples, seeds.tolist()) if tuple(triples[i].tolist()) not in banned}
    assert set(graph.e_id.tolist()) == expected
    assert not banned & {tuple(e) for e in global_edges(graph).tolist()}
    assert torch.equal(graph.n_id[:4], seeds)


def test_sampled_subgraph_never_holds_an_excluded_edge():
    triples = random_triples(200, 5, 1500)
    sampler = NeighborSubgraphs(triples, 200, 5, num_neighbors=[4, 3])
    exclude = triples[:300]
    reciprocal = torch.stack([exclude[:, 2], exclude[:, 1] + 5, exclude[:, 0]], 1)
    seeds = torch.randperm(200)[:30]
    for ex in (exclude, reciprocal):
        graph = sampler(seeds, exclude=ex)
        assert torch.equal(graph.n_id[:30], seeds)
        got = {tuple(e) for e in global_edges(graph).tolist()}
        assert not got & {tuple(e) for e in exclude.tolist()}
        assert got and torch.equal(global_edges(graph), triples[graph.e_id])


@pytest.mark.parametrize("leaves_point_in", [True, False])
def test_fanout_bounds_each_hop_and_follows_both_directions(leaves_point_in):
    # Centre 0 with leaves 1..10; leaf i has sub-leaves 100 + 10 i .. 109 + 10 i. All edges point the
    # same way, so the centre has only in-edges or only out-edges: both must be sampled.
    pairs = [(0, i) for i in range(1, 11)] + [(i, 100 + 10 * i + j) for i in range(1, 11) for j in range(10)]
    triples = torch.tensor([(b, 0, a) if leaves_point_in else (a, 0, b) for a, b in pairs])
    torch.manual_seed(0)
    graph = NeighborSubgraphs(triples, 210, 1, num_neighbors=[3, 2])(torch.tensor([0]))
    ends = {tuple(sorted(e)) for e in graph.n_id[graph.edge_index].t().tolist()}
    centre_edges = [e for e in ends if e[0] == 0]
    assert len(centre_edges) == 3  # enough leaves, no replacement: exactly the fan-out
    for _, leaf in centre_edges:
        assert sum(1 for a, b in ends if a == leaf and b > 100) <= 2
    assert all(a in {e[1] for e in centre_edges} for a, b in ends if a != 0)
    assert len(ends) == graph.e_id.numel() <= 3 + 3 * 2


def test_node_degree_counts_the_full_training_graph():
    triples = random_triples(30, 3, 50)
    graph = NeighborSubgraphs(triples, 30, 3, num_neighbors=[2])(torch.tensor([4, 9]))
    rows = triples.tolist()
    expected = [[sum(h == v for h, _, _ in rows), sum(t == v for _, _, t in rows)] for v in graph.n_id.tolist()]
    assert graph.node_degree.tolist() == expected


def test_deterministic_under_manual_seed():
    triples = random_triples(300, 5, 3000)
    sampler = NeighborSubgraphs(triples, 300, 5, num_neighbors=[5, 5])
    seeds = torch.arange(0, 300, 7)
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        runs.append(sampler(seeds))
    assert torch.equal(runs[0].e_id, runs[1].e_id) and torch.equal(runs[0].n_id, runs[1].n_id)
    assert not torch.equal(runs[0].e_id, runs[2].e_id)


def test_local_index_maps_global_ids_to_rows():
    n_id = torch.tensor([40, 7, 93, 12, 5])
    ids = torch.tensor([[5, 40], [12, 12]])
    assert local_index(n_id, ids).tolist() == [[4, 0], [3, 3]]
    with pytest.raises(ValueError, match="occur in n_id"):
        local_index(n_id, torch.tensor([6]))


def test_rejects_bad_inputs():
    triples = torch.tensor([[0, 0, 1], [1, 1, 2]])
    sampler = NeighborSubgraphs(triples, 3, 2)
    with pytest.raises(ValueError, match="distinct"):
        sampler(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="relations must be in"):
        sampler(torch.tensor([1]), exclude=torch.tensor([[0, 4, 1]]))
    with pytest.raises(ValueError, match="entity ids outside"):
        NeighborSubgraphs(triples, 2, 2)


def test_symmetric_adjacency_lists_every_triple_under_both_ends():
    triples = random_triples(25, 3, 70)
    rowptr, edge, neighbor = symmetric_adjacency(triples, 25)
    rows = triples.tolist()
    for u in range(25):
        run = slice(int(rowptr[u]), int(rowptr[u + 1]))
        got = sorted(zip(edge[run].tolist(), neighbor[run].tolist(), strict=True))
        # Under its tail a triple leads to its head, under its head to its tail (a self-loop twice).
        under_tail = [(j, h) for j, (h, _, t) in enumerate(rows) if t == u]
        under_head = [(j, t) for j, (h, _, t) in enumerate(rows) if h == u]
        assert got == sorted(under_tail + under_head), u
    assert edge.dtype == neighbor.dtype == torch.int32 and int(rowptr[-1]) == 2 * len(rows)


def test_floyd_sample_draws_every_subset_equally_often():
    torch.manual_seed(0)
    draws = floyd_sample(torch.full((30000,), 5), 2, torch.float32)
    assert draws.shape == (30000, 2) and draws.min() >= 0 and draws.max() <= 4
    assert bool((draws[:, 0] != draws[:, 1]).all())
    pairs = torch.sort(draws, 1).values
    counts = torch.bincount(pairs[:, 0] * 5 + pairs[:, 1], minlength=25)
    subsets = counts[counts > 0]
    assert subsets.numel() == 10  # C(5, 2)
    # 3000 expected per subset; 5 standard deviations is about +-260.
    assert int((subsets - 3000).abs().max()) < 300


def test_floyd_sample_takes_everything_when_the_row_is_exactly_k_long():
    draws = floyd_sample(torch.tensor([3, 3, 4]), 3)
    assert torch.equal(torch.sort(draws[:2], 1).values, torch.tensor([[0, 1, 2], [0, 1, 2]]))
    assert len(set(draws[2].tolist())) == 3 and draws[2].max() <= 3


def test_nodes_are_numbered_by_hop_then_global_id():
    triples = random_triples(60, 4, 90)
    seeds = torch.tensor([42, 3, 17])
    graph = NeighborSubgraphs(triples, 60, 4, num_neighbors=[-1, -1])(seeds)
    rows = triples.tolist()
    seen, layers, frontier = set(seeds.tolist()), [], set(seeds.tolist())
    for _ in range(2):
        reached = {b for h, _, t in rows for a, b in ((h, t), (t, h)) if a in frontier} - seen
        layers.append(sorted(reached))
        seen |= reached
        frontier = reached
    assert graph.n_id.tolist() == seeds.tolist() + layers[0] + layers[1]


def test_a_node_keeps_each_of_its_edges_with_equal_chance():
    # A star: centre 0 with six edges, three in and three out; fan-out 2 takes each with chance 1/3.
    triples = torch.tensor([[0, 0, 1], [0, 1, 2], [0, 0, 3], [4, 0, 0], [5, 1, 0], [6, 0, 0]])
    sampler = NeighborSubgraphs(triples, 7, 2, num_neighbors=[2])
    torch.manual_seed(0)
    counts = torch.zeros(6)
    for _ in range(3000):
        graph = sampler(torch.tensor([0]))
        assert graph.e_id.numel() == 2
        counts[graph.e_id] += 1
    # 1000 expected per edge, standard deviation about 26.
    assert float((counts - 1000).abs().max()) < 130


def test_with_replacement_draws_the_fanout_from_every_node_with_edges():
    triples = random_triples(40, 3, 120)
    graph = NeighborSubgraphs(triples, 40, 3, num_neighbors=[3], replace=True)(torch.tensor([5, 11]))
    incident = {i for i, (h, _, t) in enumerate(triples.tolist()) if {h, t} & {5, 11}}
    assert set(graph.e_id.tolist()) <= incident
    assert 1 <= graph.e_id.numel() <= 6
    assert torch.equal(global_edges(graph), triples[graph.e_id])


def test_a_rejected_call_leaves_no_trace():
    triples = random_triples(300, 5, 3000)
    sampler, fresh = (NeighborSubgraphs(triples, 300, 5, num_neighbors=[5, 5]) for _ in range(2))
    with pytest.raises(ValueError, match="distinct"):
        sampler(torch.cat([torch.arange(300), torch.tensor([7])]))  # touches every entity, then fails
    sampler(torch.arange(0, 300, 2))  # a successful call must clear its relabelling too
    seeds = torch.tensor([7, 8, 3])
    torch.manual_seed(4)
    first = sampler(seeds)
    torch.manual_seed(4)
    second = fresh(seeds)
    assert torch.equal(first.n_id, second.n_id) and torch.equal(first.edge_index, second.edge_index)
