"""Train RotatE with Bernoulli negatives and self-adversarial weights, from plain Python.

    GNNNS_DATA=../shared/datasets python examples/train_with_sampler.py --dataset umls

Every part is used directly (no trainer): a sampler draws negatives for each batch, the model
scores positives and negatives with one query per row, and the loss weights the negatives.
"""

import argparse

import torch

from gnnns.data import load_dataset
from gnnns.evaluation import evaluate
from gnnns.loaders import TripleLoader
from gnnns.losses import NSSALoss
from gnnns.models import build_model
from gnnns.sampling import BernoulliSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    torch.manual_seed(0)
    kg = load_dataset(args.dataset)
    model = build_model("rotate", kg, dim=100, margin=6.0)
    sampler = BernoulliSampler(kg, filtered=True)
    loss_fn = NSSALoss(margin=6.0, adversarial_temperature=1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for batch in TripleLoader(kg.train, batch_size=512):
            negatives = sampler(batch, 64, scorer=model.score_candidates)
            pos, neg = model.score_batch(batch, negatives.entities, negatives.corrupt_head)
            loss = loss_fn(pos, neg, negatives.weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        print(f"epoch {epoch}: loss {total / len(kg.train):.4f}")
    metrics = evaluate(model, kg, "test")
    print(f"test MRR {metrics['mrr']:.4f}  Hits@10 {metrics['hits@10']:.4f}")


if __name__ == "__main__":
    main()
