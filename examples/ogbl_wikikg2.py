"""ogbl-wikikg2 leaderboard recipe: RotatE with self-adversarial negatives, several seeds, OGB's protocol.

On a GPU, with the OGB files under the gnnns data root (see datasets/ogb.md):

    GNNNS_DATA=/data python examples/ogbl_wikikg2.py --device cuda --seeds 0,1,2,3,4,5,6,7,8,9

Without the files (or to try the pipeline on a CPU), the same recipe runs on a seeded synthetic
graph of wikikg2's shape at any fraction of its size, with 500 random head and 500 random tail
candidates per evaluation query as OGB provides:

    python examples/ogbl_wikikg2.py --synthetic 0.002 --epochs 3 --seeds 0,1,2 --dim 32 --lr 0.01

which takes about 30 s on 2 CPU cores and prints test MRR 0.3621 ± 0.0070, valid 0.3836 ± 0.0040
(random ranking among 500 candidates would give about 0.014: the synthetic relations have
domain and range types that the model learns).

The settings are those of OGB's own RotatE baseline for wikikg2 (250 complex dimensions, 128
uniform negatives per positive, batch 512, margin 5, self-adversarial temperature 1, Adam at
1e-4 for 200,000 steps = 6.4 epochs). gnnns trains the 2.5M-row entity table with sparse
gradients and SparseAdam (``sparse: true``), so a step touches only the rows of its batch.
Each seed's run directory keeps a checkpoint every ``--checkpoint-every`` steps; rerun with
``--resume`` after an interruption. The result is printed in the form an OGB leaderboard
submission asks for: valid and test MRR as mean ± standard deviation over the seeds.

Memory: at 250 complex dimensions the entity table is 2.5M x 500 floats = 5 GB, 15 GB with
Adam's two moments, on top of about 5 GB of OGB data (datasets/ogb.md): a GPU server's job. On a
24 GB CPU machine use ``--dim 100`` (6 GB with the moments).

Expected figure: the OGB leaderboard lists this RotatE (250 dim) baseline at about 0.43 test
MRR. That full run has not been made with gnnns: the real files cannot be fetched here and no
GPU was lent (see the README's "OGB scale" section for what has been measured).
"""

import argparse
import json
import statistics
from pathlib import Path

from gnnns.config import RunConfig
from gnnns.data import load_dataset, wikikg2_like
from gnnns.training.run import train


def recipe(args: argparse.Namespace, seed: int, output: Path) -> RunConfig:
    """OGB's RotatE settings for ogbl-wikikg2 as a gnnns run."""
    return RunConfig(
        dataset=args.dataset,
        model="rotate",
        dim=args.dim,
        margin=5.0,
        loss="nssa",
        adversarial_temperature=1.0,
        sampler="uniform",
        num_negatives=128,
        batch_size=512,
        optimizer="adam",
        lr=args.lr,
        sparse=True,
        epochs=args.epochs,
        eval_every=0,
        eval_batch_size=args.eval_batch_size,
        diagnostics_every=0,
        checkpoint_every=args.checkpoint_every,
        seed=seed,
        device=args.device,
        output=str(output),
    )


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ogbl-wikikg2")
    parser.add_argument("--synthetic", type=float, default=0.0, help="use wikikg2_like(SCALE) instead of the files")
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=7, help="OGB's 200,000 steps of 512 are 6.4 epochs")
    parser.add_argument("--dim", type=int, default=250, help="complex dimensions (OGB: -d 250 -de)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (OGB: 1e-4)")
    parser.add_argument("--eval-batch-size", type=int, default=512)
    parser.add_argument("--checkpoint-every", type=int, default=5000, help="steps between checkpoints")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default="runs/ogbl_wikikg2")
    parser.add_argument("--resume", action="store_true", help="continue each seed's run from its checkpoint")
    args = parser.parse_args()

    if args.synthetic > 0:
        kg = wikikg2_like(scale=args.synthetic, eval_negatives=500)
        args.dataset = kg.name
    else:
        kg = load_dataset(args.dataset)
    results = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        output = Path(args.output) / f"seed{seed}"
        resume = args.resume and (output / "checkpoint.pt").exists()
        results[seed] = train(recipe(args, seed, output), resume=resume, kg=kg)
        valid, test = results[seed]["valid"]["mrr"], results[seed]["test"]["mrr"]
        print(f"seed {seed}: valid MRR {valid:.4f}  test MRR {test:.4f}")

    valid = [r["valid"]["mrr"] for r in results.values()]
    test = [r["test"]["mrr"] for r in results.values()]
    num_params = kg.num_entities * 2 * args.dim + kg.num_relations * args.dim
    print(f"\n{args.dataset}, RotatE ({args.dim} dim), {len(results)} seeds, OGB evaluator protocol")
    print(f"  Test MRR:       {mean_std(test)}")
    print(f"  Validation MRR: {mean_std(valid)}")
    print(f"  #Params:        {num_params:,}")
    summary = {"dataset": args.dataset, "seeds": sorted(results), "valid_mrr": valid, "test_mrr": test}
    (Path(args.output) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
