"""Where each library's RotatE starts: the distance of random triples at initialisation, against the margin.

The NSSA loss :math:`-\\log\\sigma(\\gamma - d^+) - \\sum_k p_k \\log\\sigma(d^-_k - \\gamma)` only pulls
positives in while :math:`d^+` is not far below the margin :math:`\\gamma`: a model that starts with every
distance far below it gets almost no gradient from its positives until the negatives have been pushed out
past :math:`\\gamma`. This prints the mean and spread of :math:`d = \\lVert h \\circ r - t \\rVert` over
random triples for each library's freshly built RotatE, at the settings of ``budget_compare.py`` (200
complex coordinates, :math:`\\gamma = 9`), on a graph the size of ``--dataset``:

* gnnns: ``build_model("rotate", kg, dim=200, margin=9)`` (the official code's initialisation;
  its distance is the sum of complex moduli);
* PyKEEN: ``RotatE(triples_factory=..., embedding_dim=200)`` (L2 norm);
* PyG: ``torch_geometric.nn.kge.RotatE(E, R, 200, margin=9)`` (L2 norm; ``margin - model(h, r, t)``).

    GNNNS_DATA=/work/shared/datasets python benchmarks/init_distances.py --dataset fb15k-237

Writes ``benchmarks/results/init_distances.{json,md}``.
"""

from __future__ import annotations

import argparse

import torch
from _common import machine_info, machine_line, save

DIM, MARGIN = 200, 9.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fb15k-237")
    parser.add_argument("--triples", type=int, default=10_000, help="random triples measured")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from _common import data_root
    from pykeen.models import RotatE as PyKEENRotatE
    from pykeen.triples import TriplesFactory
    from torch_geometric.nn.kge import RotatE as PyGRotatE

    from gnnns.data import load_dataset
    from gnnns.models import build_model

    kg = load_dataset(args.dataset, root=data_root(), download=False)
    g = torch.Generator().manual_seed(args.seed)
    n = args.triples
    triples = torch.stack(
        [
            torch.randint(kg.num_entities, (n,), generator=g),
            torch.randint(kg.num_relations, (n,), generator=g),
            torch.randint(kg.num_entities, (n,), generator=g),
        ],
        1,
    )
    distances = {}
    with torch.no_grad():
        torch.manual_seed(args.seed)
        ours = build_model("rotate", kg, dim=DIM, margin=MARGIN)
        distances["gnnns"] = -ours.score(triples)
        torch.manual_seed(args.seed)
        tf = TriplesFactory(
            mapped_triples=kg.train,
            entity_to_id={name: i for i, name in enumerate(kg.entity_names)},
            relation_to_id={name: i for i, name in enumerate(kg.relation_names)},
        )
        pykeen = PyKEENRotatE(triples_factory=tf, embedding_dim=DIM, random_seed=args.seed)
        distances["pykeen"] = -pykeen.score_hrt(triples).flatten()
        torch.manual_seed(args.seed)
        pyg = PyGRotatE(kg.num_entities, kg.num_relations, hidden_channels=DIM, margin=MARGIN)
        distances["pyg"] = MARGIN - pyg(triples[:, 0], triples[:, 1], triples[:, 2])
    rows = {
        side: {
            "mean": float(d.mean()),
            "std": float(d.std()),
            "min": float(d.min()),
            "max": float(d.max()),
            "positive_term_gradient": float(torch.sigmoid(d - MARGIN).mean()),
        }
        for side, d in distances.items()
    }
    machine = machine_info()
    payload = dict(dataset=args.dataset, triples=n, seed=args.seed, margin=MARGIN, dim=DIM, sides=rows, machine=machine)
    labels = {"gnnns": "gnnns (sum of moduli)", "pykeen": "PyKEEN (L2)", "pyg": "PyG kge (L2)"}
    lines = [
        f"# RotatE at initialisation: distances of random triples ({args.dataset}, d={DIM}, margin {MARGIN:g})",
        "",
        f"{n:,} uniformly random triples; *positive-term gradient* is the mean of σ(d − γ), the magnitude of "
        "∂/∂d of −log σ(γ − d): near 0, a positive triple is barely pulled in.",
        "",
        "| library | mean d | std | min | max | positive-term gradient |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {labels[s]} | {r['mean']:.3f} | {r['std']:.3f} | {r['min']:.3f} | {r['max']:.3f} | "
            f"{r['positive_term_gradient']:.4f} |"
            for s, r in rows.items()
        ],
        "",
        f"Command: `python benchmarks/init_distances.py --dataset {args.dataset} --triples {n} --seed {args.seed}`",
        "",
        machine_line({**machine, "loadavg_at_end": None}),
    ]
    save("init_distances", payload, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
