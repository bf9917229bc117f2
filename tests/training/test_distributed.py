"""Training in several processes: sharded batches, exact DDP gradients, checkpoints, resume, torchrun.

Two gloo CPU processes are started twice: once with :func:`torch.multiprocessing.spawn` (the
Python API: gradients, checkpoints, a crash and a resume), once end to end with
``python -m torch.distributed.run --standalone --nproc_per_node=2 -m gnnns train``.

**Tolerance of the torchrun test.** Filtered test MRR on the embedded synthetic graph after 3
epochs (ComplEx, dim 32, otherwise the defaults), measured with

    python -m gnnns train --epochs 3 --dim 32 --diagnostics-every 0 --seed S
    python -m torch.distributed.run --standalone --nproc_per_node=2 -m gnnns train ... (the same)

=====  ==============  ===============  ========
seed   one process     two processes    2 - 1
=====  ==============  ===============  ========
0      0.5411          0.5458           +0.0047
1      0.5003          0.4997           -0.0006
2      0.5008          0.5009           +0.0001
3      0.5008          0.4929           -0.0079
4      0.5104          0.5099           -0.0005
=====  ==============  ===============  ========

One process varies by 0.018 (std) across seeds. With the same seed both runs share the model's
initialisation and every epoch's order; only the negatives of rank 1 differ, and the two differ by
at most 0.008. The test allows 0.02, which such a run passes with a wide margin while half a
dataset unseen or a wrong averaging of gradients would not (the exact gradient test guards the
latter to 1e-6).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gnnns.config import RunConfig
from gnnns.data import KnowledgeGraph
from gnnns.loaders import OneToNLoader, TripleLoader
from gnnns.losses import BCELoss, NSSALoss, SoftmaxCrossEntropyLoss
from gnnns.models import build_model
from gnnns.sampling import NegativeSampler, UniformSampler
from gnnns.training.checkpoint import load
from gnnns.training.distributed import SINGLE, Distributed, rank_seed
from gnnns.training.run import train
from gnnns.training.trainer import Trainer
from tests.graphs import random_kg, small_run

MRR_TOLERANCE = 0.02
TIMING = {"train_seconds", "triples_per_second", "sample_ms", "step_ms", "sample_share"}


class ShiftSampler(NegativeSampler):
    """Deterministic negatives: the side chosen by the head's parity, replaced by the entities
    1..k after it, so that gradients can be compared exactly across process counts."""

    def corrupt_head(self, positives):
        return positives[:, 0] % 2 == 0

    def draw(self, positives, num_negatives, corrupt_head):
        base = torch.where(corrupt_head, positives[:, 0], positives[:, 2])
        return (base.unsqueeze(1) + torch.arange(1, num_negatives + 1)) % self.num_entities


def small_kg() -> KnowledgeGraph:
    """186 random training triples (6 global batches of 32, the last of 26), 25 valid, 25 test."""
    triples = random_kg(n=240).train
    return KnowledgeGraph(triples[:186], triples[186:211], triples[211:236], num_entities=40, num_relations=3)


def gradients(kg, sparse: bool, distributed: Distributed, half: bool = False) -> dict:
    """Gradients of one step on the first batch of epoch 1 (global batch 16); ``half``: the
    gradient of rank 0's share alone, in one process."""
    torch.manual_seed(0)
    model = build_model("distmult", kg, 8, sparse=sparse)
    loader = TripleLoader(kg.train, 16, seed=0, rank=distributed.rank, world_size=distributed.world_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    trainer = Trainer(
        model, kg, NSSALoss(margin=2.0), optimizer, loader, ShiftSampler(kg), 3, progress=False, distributed=distributed
    )
    batch = next(loader.batches(1))
    trainer.step(batch[::2] if half else batch)
    return {name: (p.grad.to_dense() if p.grad.is_sparse else p.grad).clone() for name, p in model.named_parameters()}


def one_to_n_gradients(kg, mode: str, distributed: Distributed, half: bool = False) -> dict:
    """Gradients of one 1-N step (ComplEx with inverse relations, label smoothing, N3) on the first
    batch of epoch 1 (global batch 16); ``half``: rank 0's share alone, in one process."""
    torch.manual_seed(0)
    model = build_model("complex", kg, 8, reciprocal=True)
    loader = OneToNLoader(
        kg.train,
        kg.num_entities,
        kg.num_relations,
        16,
        mode,
        seed=0,
        rank=distributed.rank,
        world_size=distributed.world_size,
    )
    loss = SoftmaxCrossEntropyLoss(0.1) if mode == "1vsall" else BCELoss(0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    trainer = Trainer(
        model, kg, loss, optimizer, loader, regularizer_weight=0.01, progress=False, distributed=distributed
    )
    queries, targets = next(loader.batches(1))
    trainer.step((queries[::2], targets[::2]) if half else (queries, targets))
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def run_config(out: Path, name: str, **kw) -> RunConfig:
    # Global batches of 32 over small_kg(): 6 steps an epoch, 16 triples per process (13 in the last).
    settings = dict(dataset="random", sampler="dynamic", eval_every=1, checkpoint_every=2)
    return small_run(out, name, **{**settings, **kw})


# 1vsAll over small_kg(): 372 queries (even, so two processes leave none out), global batches of 32.
ONE_VS_ALL = dict(training="1vsall", loss="sce", label_smoothing=0.1, model="complex", checkpoint_every=0)


class Crash(Exception):
    """Stands for the processes dying in the middle of a step."""


def worker(rank: int, out: str) -> None:
    """One of two processes: every scenario in a row, results written under ``out``."""
    torch.set_num_threads(1)
    out = Path(out)
    dist.init_process_group("gloo", init_method=f"file://{out / 'rendezvous'}", rank=rank, world_size=2)
    try:
        distributed = Distributed.current()
        kg = small_kg()
        for sparse in (False, True):
            torch.save(gradients(kg, sparse, distributed), out / f"grad-{sparse}-{rank}.pt")
        for mode in ("1vsall", "kvsall"):
            torch.save(one_to_n_gradients(kg, mode, distributed), out / f"grad-{mode}-{rank}.pt")
        train(run_config(out, "1vsall", **ONE_VS_ALL), kg=kg)
        result = train(run_config(out, "full"), kg=kg)
        (out / f"result-{rank}.json").write_text(json.dumps(result))
        original, calls = Trainer.step, [0]

        def crashing(self, batch):
            calls[0] += 1
            if calls[0] == 10:  # epoch 2, step 4: the checkpoint of its step 2 survives
                raise Crash
            return original(self, batch)

        Trainer.step = crashing
        try:
            train(run_config(out, "crashed"), kg=kg)
        except Crash:
            pass
        finally:
            Trainer.step = original
        shutil.copy(out / "crashed" / "checkpoint.pt", out / f"crashed-{rank}.pt")
        dist.barrier()
        train(run_config(out, "crashed"), resume=True, kg=kg)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(str(out),), nprocs=2, join=True)
    return out


def records(run_dir: Path) -> list[dict]:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING}
        return value

    return [strip(json.loads(line)) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# -- sharding and refusals, in this process ------------------------------------------------
@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_split_each_single_process_batch_evenly(world_size):
    triples = torch.arange(3 * 23).view(23, 3)
    one = TripleLoader(triples, batch_size=6, seed=1)
    shards = [TripleLoader(triples, 6, seed=1, rank=r, world_size=world_size) for r in range(world_size)]
    kept = 23 - 23 % world_size  # the last 23 mod W triples of the epoch's order sit out
    order = one.order(4)[:kept]
    per_rank = [list(s.batches(4)) for s in shards]
    global_batch = 6 // world_size * world_size
    assert len({len(batches) for batches in per_rank}) == 1 and len(per_rank[0]) == -(-kept // global_batch)
    for i, parts in enumerate(zip(*per_rank, strict=True)):
        assert len({len(p) for p in parts}) == 1  # every process the same number of triples
        union = torch.cat(parts)[:, 0].sort().values
        assert torch.equal(union, triples[order[i * global_batch : (i + 1) * global_batch], 0].sort().values)
    with pytest.raises(ValueError, match="smaller than the 4 processes"):
        TripleLoader(triples, 3, rank=0, world_size=4)


@pytest.mark.parametrize("mode", ["1vsall", "kvsall"])
def test_one_to_n_shards_split_each_single_process_batch_evenly(mode):
    kg = small_kg()
    one = OneToNLoader(kg.train, kg.num_entities, kg.num_relations, 10, mode, seed=2)
    shards = [
        OneToNLoader(kg.train, kg.num_entities, kg.num_relations, 10, mode, seed=2, rank=r, world_size=3)
        for r in range(3)
    ]
    kept = len(one.queries) - len(one.queries) % 3
    order = one.order(5)[:kept]
    per_rank = [list(shard.batches(5)) for shard in shards]
    assert len({len(batches) for batches in per_rank}) == 1 and len(per_rank[0]) == -(-kept // 9)
    for i, parts in enumerate(zip(*per_rank, strict=True)):
        assert len({len(queries) for queries, _ in parts}) == 1
        rows = order[i * 9 : (i + 1) * 9]
        # The union of the shards' (query, target) rows is the single process's batch of 9.
        got = sorted(
            (tuple(q), tuple(t.flatten().tolist()))
            for queries, targets in parts
            for q, t in zip(queries.tolist(), targets, strict=True)
        )
        queries = one.queries[rows]
        targets = one.answers[rows] if mode == "1vsall" else one._targets(queries)
        want = sorted((tuple(q), tuple(t.flatten().tolist())) for q, t in zip(queries.tolist(), targets, strict=True))
        assert got == want


def test_rank_seeds_keep_rank_0_on_the_single_process_stream():
    assert rank_seed(7, 0) == 7
    assert len({rank_seed(7, r) for r in range(4)}) == 4
    assert rank_seed(7, 1) == rank_seed(7, 1) != rank_seed(8, 1)


def test_trainer_refuses_what_it_cannot_shard(ring_kg):
    two = Distributed(rank=1, world_size=2, backend="gloo")
    model = build_model("distmult", ring_kg, 8)

    uniform = UniformSampler(ring_kg)

    def trainer(loader, distributed=two, model=model, sampler=uniform):
        optimizer = torch.optim.Adam(model.parameters())
        return Trainer(model, ring_kg, NSSALoss(), optimizer, loader, sampler, distributed=distributed)

    with pytest.raises(ValueError, match="list is not sharded"):
        trainer([ring_kg.train[:16]])
    with pytest.raises(ValueError, match="TripleLoader is sharded as rank 0 of 1, but this process is rank 1 of 2"):
        trainer(TripleLoader(ring_kg.train, 16))
    with pytest.raises(ValueError, match="OneToNLoader is sharded as rank 0 of 1, but this process is rank 1 of 2"):
        trainer(OneToNLoader(ring_kg.train, 60, 3, 16), sampler=None)
    sparse = build_model("distmult", ring_kg, 8, sparse=True)
    with pytest.raises(ValueError, match="NCCL, which has no sparse all-reduce"):
        trainer(TripleLoader(ring_kg.train, 16, rank=1, world_size=2), Distributed(1, 2, 1, "nccl"), sparse)


# -- two gloo processes ------------------------------------------------------------------------
@pytest.mark.parametrize("sparse", [False, True])
def test_ddp_gradient_is_the_single_process_gradient(two_processes, sparse):
    kg = small_kg()
    single = gradients(kg, sparse, SINGLE)
    half = gradients(kg, sparse, SINGLE, half=True)
    for rank in (0, 1):
        ddp = torch.load(two_processes / f"grad-{sparse}-{rank}.pt")
        for name, expected in single.items():
            assert float(expected.abs().max()) > 1e-3, name  # a real gradient, not zeros
            assert torch.allclose(ddp[name], expected, rtol=0, atol=1e-6), name
            # Without the all-reduce a process would hold the gradient of its half only.
            assert float((half[name] - expected).abs().max()) > 1e-3, name


@pytest.mark.parametrize("mode", ["1vsall", "kvsall"])
def test_one_to_n_ddp_gradient_is_the_single_process_gradient(two_processes, mode):
    kg = small_kg()
    single = one_to_n_gradients(kg, mode, SINGLE)
    half = one_to_n_gradients(kg, mode, SINGLE, half=True)
    for rank in (0, 1):
        ddp = torch.load(two_processes / f"grad-{mode}-{rank}.pt")
        for name, expected in single.items():
            assert float(expected.abs().max()) > 1e-3, name
            assert torch.allclose(ddp[name], expected, rtol=0, atol=1e-6), name
            assert float((half[name] - expected).abs().max()) > 1e-3, name


def test_one_vs_all_in_two_processes_trains_the_single_process_model(two_processes, tmp_path):
    # 1-N training draws nothing at random: with the same seed, two processes sharing each batch
    # take the single process's steps, up to the order of floating-point sums.
    single = train(run_config(tmp_path, "1vsall", **ONE_VS_ALL), kg=small_kg())
    two = load(two_processes / "1vsall" / "checkpoint.pt")
    one = load(tmp_path / "1vsall" / "checkpoint.pt")
    assert two["world_size"] == 2 and [r["steps"] for r in records(two_processes / "1vsall")] == [12] * 3
    for key, value in one["model"].items():
        assert torch.allclose(two["model"][key], value, rtol=0, atol=1e-4), key
    ddp = json.loads((two_processes / "1vsall" / "metrics.json").read_text())
    assert ddp["test"]["mrr"] == pytest.approx(single["test"]["mrr"], abs=1e-4)


def test_checkpoints_and_metrics_are_written_once(two_processes):
    run = two_processes / "full"
    assert sorted(p.name for p in run.iterdir()) == [
        "best.pt",
        "checkpoint.pt",
        "config.json",
        "metrics.json",
        "metrics.jsonl",
    ]
    lines = records(run)
    assert [r["epoch"] for r in lines] == [1, 2, 3] and all(r["processes"] == 2 for r in lines)
    assert all(r["steps"] == 6 for r in lines)
    saved = load(run / "checkpoint.pt")
    assert saved["world_size"] == 2 and len(saved["ranks"]) == 2
    # Each process samples from its own stream, and the checkpoint keeps both.
    assert not torch.equal(saved["ranks"][0]["rng"]["torch"], saved["ranks"][1]["rng"]["torch"])
    first, second = (json.loads((two_processes / f"result-{r}.json").read_text()) for r in (0, 1))
    # Both processes return the whole evaluation (only their clocks differ).
    assert first["valid"] == second["valid"] and first["test"] == second["test"]
    assert first["test"]["count"] == 2 * 25


def test_resume_under_ddp_continues_bit_for_bit(two_processes):
    for rank in (0, 1):
        crashed = load(two_processes / f"crashed-{rank}.pt")
        assert (crashed["epoch"], crashed["batches_done"]) == (1, 2)
    full, resumed = load(two_processes / "full" / "checkpoint.pt"), load(two_processes / "crashed" / "checkpoint.pt")
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert records(two_processes / "full") == records(two_processes / "crashed")


def test_a_two_process_checkpoint_resumes_in_one_process(two_processes, tmp_path, capsys):
    shutil.copytree(two_processes / "full", tmp_path / "full")
    train(run_config(tmp_path, "full", epochs=4), resume=True, kg=small_kg())
    assert "written by 2 process(es) and is resumed by 1" in capsys.readouterr().out
    assert [r["epoch"] for r in records(tmp_path / "full")] == [1, 2, 3, 4]
    assert "processes" not in records(tmp_path / "full")[-1]


def test_torchrun_matches_a_single_process_run(tmp_path):
    args = ["train", "--dataset", "synthetic", "--epochs", "3", "--dim", "32", "--diagnostics-every", "0"]
    args += ["--no-progress", "--checkpoint-every", "10"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gnnns"]
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [*command, *args, "--output", str(tmp_path / "two")],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test: MRR") == 1  # printed by rank 0 only
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["test"]["mrr"]
    config = RunConfig(dataset="synthetic", epochs=3, dim=32, diagnostics_every=0, progress=False)
    config.output = str(tmp_path / "one")
    one = train(config)["test"]["mrr"]
    assert two > 0.4  # trained: untrained scores give about 0.003 on 2,866 entities
    assert abs(two - one) <= MRR_TOLERANCE, (one, two)
