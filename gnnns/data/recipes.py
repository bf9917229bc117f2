"""What a named dataset is made of: its files, where each comes from and its content hash.

:class:`RemoteFile` is one file, :class:`DatasetRecipe` one dataset (files, expected statistics,
accepted folder layouts); :func:`find_local` finds a file on disk, gzipped or not. The recipes
themselves are in :mod:`gnnns.data.dataset_sources`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENTITY_TYPES_FILE = "entity2types.json"
TYPE_LABELS_FILE = "types.en.json"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in the dataset folder, where to get it, its content hash.

    ``sha256`` is of the uncompressed content (a local ``.gz`` copy has the same content hash);
    ``None`` means no checksum is known and a download is only warned about.
    """

    name: str
    url: str
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetRecipe:
    """How to find, fetch and check one named dataset.

    Attributes:
        name (str): registry name, also the default folder name under the data root.
        description (str): one line for listings.
        files (tuple[RemoteFile, ...]): files of the dataset folder.
        counts (dict): expected ``KnowledgeGraph.statistics()`` values; a mismatch warns.
        folders (tuple[str, ...]): other accepted folders relative to the root (upstream layouts).
        type_files (tuple[RemoteFile, ...]): entity-type files, found in the dataset folder or
            its parent.
    """

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    counts: Mapping[str, int] = field(default_factory=dict)
    folders: tuple[str, ...] = ()
    type_files: tuple[RemoteFile, ...] = ()

    def candidates(self, root: Path) -> list[Path]:
        """Folders under ``root`` that may hold the dataset, the download target first."""
        return [root / self.name, *(root / f for f in self.folders)]

    def missing(self, folder: Path) -> list[RemoteFile]:
        """Files of this recipe not present in ``folder`` (type files: nor in its parent)."""
        gone = [f for f in self.files if find_local(folder, f.name) is None]
        return gone + [f for f in self.type_files if find_local(folder, f.name, parent=True) is None]


def find_local(folder: Path, name: str, parent: bool = False) -> Path | None:
    """``folder/name`` or ``folder/name.gz`` (then the same in the parent folder if asked), or None."""
    for place in (folder, folder.parent) if parent else (folder,):
        for path in (place / name, place / f"{name}.gz"):
            if path.is_file():
                return path
    return None
