"""Check that the PyKEEN peer configuration learns before timing it (PEERS.md "Caveat").

Trains PyKEEN RotatE on UMLS (ships with PyKEEN, no download) at the benchmark settings (d=200, batch
512, 128 uniform negatives, NSSA margin 9 / temperature 1, Adam lr 1e-3) and reports the filtered
both-sides realistic test MRR next to the MRR of the untrained model and of random ranking.

    python benchmarks/peer_check.py --epochs 50
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import fmt, machine_info, save


def mrr(model, ds, batch_size: int = 256) -> float:
    from pykeen.evaluation import RankBasedEvaluator

    result = RankBasedEvaluator(filtered=True).evaluate(
        model,
        ds.testing.mapped_triples,
        batch_size=batch_size,
        use_tqdm=False,
        additional_filter_triples=[ds.training.mapped_triples, ds.validation.mapped_triples],
    )
    return float(result.get_metric("both.realistic.inverse_harmonic_mean_rank"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from pykeen.datasets import UMLS
    from pykeen.losses import NSSALoss
    from pykeen.models import RotatE
    from pykeen.training import SLCWATrainingLoop

    torch.manual_seed(args.seed)
    ds = UMLS()
    tf = ds.training
    model = RotatE(
        triples_factory=tf,
        embedding_dim=200,
        random_seed=args.seed,
        loss=NSSALoss(margin=9.0, adversarial_temperature=1.0),
    )
    before = mrr(model, ds)
    loop = SLCWATrainingLoop(
        model=model,
        triples_factory=tf,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=128),
    )
    start = time.perf_counter()
    losses = loop.train(triples_factory=tf, num_epochs=args.epochs, batch_size=512, use_tqdm=False)
    seconds = time.perf_counter() - start
    after = mrr(model, ds)
    n = ds.num_entities
    random_mrr = sum(1.0 / k for k in range(1, n + 1)) / n  # expected MRR of a uniformly random rank
    learns = after > 3 * random_mrr and after > 2 * before and losses[-1] < losses[0]
    payload = dict(
        machine=machine_info(),
        dataset="UMLS (pykeen.datasets.UMLS)",
        epochs=args.epochs,
        train_seconds=seconds,
        first_loss=losses[0],
        last_loss=losses[-1],
        mrr_untrained=before,
        mrr_trained=after,
        mrr_random=random_mrr,
        learns=learns,
        criterion="trained MRR > 3x random and > 2x untrained, and loss decreased",
    )
    md = (
        "# PyKEEN peer check: RotatE on UMLS\n\n"
        f"PyKEEN {payload['machine']['pykeen']}, torch {payload['machine']['torch']}, "
        f"{payload['machine']['date']}. Settings as in the FB15k-237 benchmark (d=200, batch 512, 128 uniform "
        "negatives, NSSA margin 9.0 / temperature 1.0, Adam lr 1e-3, sLCWA).\n\n"
        "| epochs | loss first → last | test MRR untrained | test MRR trained | random MRR | learns |\n"
        "|---:|---|---:|---:|---:|---|\n"
        f"| {args.epochs} | {losses[0]:.4f} → {losses[-1]:.4f} | {before:.4f} | {after:.4f} | {random_mrr:.4f} "
        f"| {'yes' if learns else 'NO'} |\n\n"
        f"Training took {fmt(seconds)} s. MRR = filtered both-sides realistic MRR on the UMLS test split.\n"
    )
    save("peer_check", payload, md)


if __name__ == "__main__":
    main()
