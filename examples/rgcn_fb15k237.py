"""R-GCN + DistMult on FB15k-237, trained on neighbour-sampled subgraphs with hard negatives.

    GNNNS_DATA=../shared/datasets python examples/rgcn_fb15k237.py --epochs 2

Each batch of training triples gets negatives from a score-aware sampler (here NMiss-style
dynamic negatives, `--sampler`), and the R-GCN embeds exactly the entities the decoder scores
(heads, tails and negatives) from a subgraph sampled around them across all relations, with
the batch's own edges left out of message passing. Evaluation embeds every entity once, layer
by layer. The published recipe (full graph, 500-d, blocks of 5 x 5) is
`examples/configs/rgcn_fb15k237.yaml`; this script is the scalable variant.

What to expect (2 CPU cores, shared): one epoch in about 4 minutes, test MRR 0.109, Hits@10 0.214.
"""

import argparse

import torch

from gnnns.data import load_dataset
from gnnns.evaluation import evaluate
from gnnns.loaders import NeighborSubgraphs, TripleLoader
from gnnns.losses import BCELoss
from gnnns.models import build_model
from gnnns.sampling import build_sampler
from gnnns.training import Trainer
from gnnns.training.graph_scoring import SubgraphScoring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--sampler", default="dynamic")
    parser.add_argument("--fanout", default="10,5")
    parser.add_argument("--dataset", default="fb15k237", help="any gnnns dataset name (umls for a quick try)")
    args = parser.parse_args()

    torch.manual_seed(0)
    kg = load_dataset(args.dataset)
    model = build_model(
        "distmult", kg, args.dim, encoder="rgcn", encoder_options={"num_layers": 2, "num_bases": 8, "edge_dropout": 0.2}
    )
    fanout = [int(f) for f in args.fanout.split(",")]
    trainer = Trainer(
        model,
        kg,
        BCELoss(),
        torch.optim.Adam(model.parameters(), lr=0.003),
        TripleLoader(kg.train, batch_size=2048),
        sampler=build_sampler(args.sampler, kg),
        num_negatives=16,
        scoring=SubgraphScoring(model, NeighborSubgraphs(kg.train, kg.num_entities, kg.num_relations, fanout)),
        eval_every=1,
    )
    trainer.fit(args.epochs)
    print("test", {k: round(v, 4) for k, v in evaluate(model, kg, "test").items() if isinstance(v, float)})


if __name__ == "__main__":
    main()
