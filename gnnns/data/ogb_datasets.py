"""What gnnns knows of OGB's knowledge-graph datasets, ogbl-wikikg2 and ogbl-biokg: names, folders, files.

The facts come from ogb's ``master.csv``; :meth:`OGBDataset.missing` names the files OGB's loader
would read but a folder lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gnnns.data.registry import DatasetNotFoundError


@dataclass(frozen=True)
class OGBDataset:
    """What gnnns knows of one OGB link-prediction dataset (facts from ogb's ``master.csv``).

    Attributes:
        name (str): OGB name, e.g. ``"ogbl-wikikg2"``.
        description (str): one line for listings.
        download_name (str): the zip's name and the folder it unpacks to.
        split (str): the split type, the folder under ``split/``.
        hetero (bool): typed nodes (``head_type`` / ``tail_type`` per triple).
        counts (dict): the dataset's statistics, as :meth:`KnowledgeGraph.statistics` names them.
        version (int): the release, the ``RELEASE_v{version}.txt`` file OGB checks for.
    """

    name: str
    description: str
    download_name: str
    split: str
    hetero: bool
    counts: Mapping[str, int] = field(default_factory=dict)
    version: int = 1

    @property
    def url(self) -> str:
        """Where OGB serves the zip."""
        return f"http://snap.stanford.edu/ogb/data/linkproppred/{self.download_name}.zip"

    @property
    def folder_name(self) -> str:
        """The folder under the data root: OGB's name with ``_`` for ``-``."""
        return self.name.replace("-", "_")

    @property
    def raw_files(self) -> tuple[str, ...]:
        """Files of ``raw/`` that OGB parses when ``processed/data_processed`` is absent."""
        if self.hetero:
            return ("raw/num-node-dict.csv.gz", "raw/triplet-type-list.csv.gz")
        return ("raw/edge.csv.gz", "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz", "raw/edge_reltype.csv.gz")

    def missing(self, folder: Path) -> list[str]:
        """What OGB would need but ``folder`` lacks, as paths relative to it (empty: complete)."""
        gone = [] if (folder / f"RELEASE_v{self.version}.txt").is_file() else [f"RELEASE_v{self.version}.txt"]
        if not (folder / "processed" / "data_processed").is_file():
            gone += [f"{f} (or processed/data_processed)" for f in self.raw_files if not (folder / f).is_file()]
        split_dir = folder / "split" / self.split
        if not (split_dir / "split_dict.pt").is_file():
            gone += [
                f"split/{self.split}/{s}.pt"
                for s in ("train", "valid", "test")
                if not (split_dir / f"{s}.pt").is_file()
            ]
        return gone


OGB_DATASETS: dict[str, OGBDataset] = {
    "ogbl-wikikg2": OGBDataset(
        "ogbl-wikikg2",
        "OGB ogbl-wikikg2 (Wikidata, time split; 500 + 500 provided negatives per query)",
        "wikikg-v2",
        "time",
        hetero=False,
        counts={"entities": 2_500_604, "relations": 535, "train": 16_109_182, "valid": 429_456, "test": 598_543},
    ),
    "ogbl-biokg": OGBDataset(
        "ogbl-biokg",
        "OGB ogbl-biokg (biomedical, 5 node types, random split; typed provided negatives)",
        "biokg",
        "random",
        hetero=True,
        counts={"entities": 93_773, "relations": 51, "train": 4_762_678, "valid": 162_886, "test": 162_870, "types": 5},
    ),
}
"""The OGB datasets gnnns loads, by OGB name."""


def ogb_dataset(name: str) -> OGBDataset:
    """The :class:`OGBDataset` of ``name`` (case and ``_``/``-`` insensitive), or :class:`DatasetNotFoundError`."""
    key = name.strip().lower().replace("_", "-")
    if key not in OGB_DATASETS:
        raise DatasetNotFoundError(
            f"{name!r} is not an OGB dataset gnnns reads; expected one of {', '.join(OGB_DATASETS)}"
        )
    return OGB_DATASETS[key]
