"""Where dataset files live and how missing ones arrive: the data root, a recipe's folder under it,
and downloads verified against their sha256 before they appear.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
import warnings
from pathlib import Path

from gnnns.data.recipes import DatasetRecipe, RemoteFile

# The name from before gnnns.data.registry was split, so logging set up for it still applies.
logger = logging.getLogger("gnnns.data.registry")

ENV_VAR = "GNNNS_DATA"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither present under the data root nor downloadable; the message lists the
    expected files and folders."""


class ChecksumError(ValueError):
    """A downloaded file's sha256 differs from the recipe's; nothing was written."""


class UnverifiedDownloadWarning(UserWarning):
    """A file was downloaded for which no checksum is known."""


def resolve_root(root: str | Path | None = None) -> tuple[Path, str]:
    """The data root and where it came from.

    Returns:
        ``(path, source)``, source being ``"root argument"``, ``"GNNNS_DATA"`` or ``"default cache"``.
    """
    if root is not None:
        return Path(root).expanduser(), "root argument"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "gnnns", "default cache"


def locate(recipe: DatasetRecipe, root: Path) -> tuple[Path, list[RemoteFile]]:
    """The folder of ``recipe`` under ``root`` and the files missing there.

    The first complete candidate folder wins; else the first existing one; else the download target.
    """
    fallback = None
    for folder in recipe.candidates(root):
        missing = recipe.missing(folder)
        if not missing:
            return folder, []
        if fallback is None and folder.is_dir():
            fallback = folder, missing
    if fallback is not None:
        return fallback
    target = recipe.candidates(root)[0]
    return target, recipe.missing(target)


def download_file(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verifying its sha256 when known.

    ``dest`` appears only once complete and verified (an atomic rename); on any failure no file is
    left behind.

    Raises:
        ChecksumError: the content's sha256 differs from ``sha256``.
        OSError: the download or the write failed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    logger.info("downloading %s -> %s", url, dest)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ChecksumError(f"{url}: sha256 {digest.hexdigest()} != expected {sha256}; {dest} not written")
        if sha256 is None:
            warnings.warn(
                f"{dest}: downloaded from {url}, but could not be verified (no sha256 known); "
                f"its sha256 is {digest.hexdigest()}",
                UnverifiedDownloadWarning,
                stacklevel=2,
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
