"""Guards that keep ``ogb`` offline: no PyPI version check, no download, no question on stdin.

:func:`import_ogb` hides ``outdated`` while ``ogb`` first imports; :func:`_offline` swaps ogb's
download helpers for one that raises and sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` around its
loads; :func:`_not_found_message` lists the files a dataset folder lacks and how to get them.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from gnnns.data.ogb_datasets import OGBDataset
from gnnns.data.registry import ENV_VAR, DatasetNotFoundError

_NO_WEIGHTS_ONLY = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
_ABSENT = object()


def import_ogb() -> ModuleType:
    """``ogb.linkproppred``, imported without the PyPI version check ``ogb`` starts on import.

    ``ogb`` asks the ``outdated`` package for its latest release in a background thread (a network
    call) when ``outdated`` imports; hiding ``outdated`` while ``ogb`` first imports skips it.

    Raises:
        ImportError: ``ogb`` is not installed (``pip install "gnnns[ogb]"``).
    """
    saved = sys.modules.get("outdated", _ABSENT)
    sys.modules["outdated"] = None  # `from outdated import ...` raises ImportError; ogb then skips the check
    try:
        import ogb.linkproppred as linkproppred
    except ImportError as e:
        raise ImportError(
            f'reading OGB datasets needs the `ogb` package: pip install "gnnns[ogb]" (importing it failed: {e})'
        ) from e
    finally:
        if saved is _ABSENT:
            del sys.modules["outdated"]
        else:
            sys.modules["outdated"] = saved
    return linkproppred


def _refuse_download(url: str, *args, **kwargs):
    raise DatasetNotFoundError(
        f"ogb tried to download {url}; gnnns reads OGB datasets offline only. Download and unpack it "
        "yourself (see datasets/ogb.md)."
    )


@contextmanager
def _offline(linkproppred: ModuleType) -> Iterator[None]:
    """Let ``ogb`` read pickled numpy arrays with ``torch.load`` and forbid it to download.

    ``ogb`` calls ``torch.load`` without ``weights_only``, which newer torch defaults to True and
    which cannot read OGB's numpy arrays; the environment variable restores the old default for
    those calls only. Its download helpers would open the network and, above 1 GB, ask on stdin.
    """
    module = sys.modules[linkproppred.LinkPropPredDataset.__module__]
    saved_env = os.environ.get(_NO_WEIGHTS_ONLY)
    saved_helpers = module.decide_download, module.download_url
    os.environ[_NO_WEIGHTS_ONLY] = "1"
    module.decide_download = module.download_url = _refuse_download
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=f".*{_NO_WEIGHTS_ONLY}.*")
            yield
    finally:
        module.decide_download, module.download_url = saved_helpers
        if saved_env is None:
            del os.environ[_NO_WEIGHTS_ONLY]
        else:
            os.environ[_NO_WEIGHTS_ONLY] = saved_env


def _not_found_message(meta: OGBDataset, root: Path, source: str, folder: Path, missing: list[str]) -> str:
    lines = [f"{meta.name} is not complete under the data root {root} (from {source}); missing in {folder}/:"]
    lines += [f"  {path}" for path in missing]
    others = sorted(p.name for p in folder.glob("RELEASE_v*.txt")) if folder.is_dir() else []
    if others and f"RELEASE_v{meta.version}.txt" in missing:
        lines.append(f"  (found {', '.join(others)}: another release of the dataset than the installed ogb expects)")
    lines += [
        "gnnns never downloads OGB data. Fetch and unpack it once:",
        f"  cd {root} && wget {meta.url} && unzip {meta.download_name}.zip",
        f"  mv {meta.download_name} {meta.folder_name}   # OGB's loader reads it under this name",
        f"or point {ENV_VAR} at the folder that holds {meta.folder_name}/, or pass root=...",
    ]
    return "\n".join(lines)
