"""The table of downloadable datasets: FB15k-237, WN18RR, UMLS, Nations, Kinship, CoDEx, YAGO3-10.

Each recipe names its files, the pinned upstream URL of each and the sha256 of its content, and
the statistics the loaded graph is expected to have. ``datasets/sources.tsv`` is the same table as
a file (:func:`recipe_table`).
"""

from __future__ import annotations

from collections.abc import Mapping

from gnnns.data.recipes import ENTITY_TYPES_FILE, TYPE_LABELS_FILE, DatasetRecipe, RemoteFile

# Pinned upstream commits (the ones the offline copy was taken from), so a URL always serves the
# bytes its checksum describes.
_RAW = "https://raw.githubusercontent.com"
_KGE = f"{_RAW}/DeepGraphLearning/KnowledgeGraphEmbedding/2e440e0f9c687314d5ff67ead68ce985dc446e3a/data"
_PYKEEN = f"{_RAW}/pykeen/pykeen/05c7bbb20c952f3e5e958e694344ace4005b1bbb/src/pykeen/datasets"
_CODEX = f"{_RAW}/tsafavi/codex/3132e426c2a6b643b70bad679905a3a6270be440/data"
_SPLITS = ("train.txt", "valid.txt", "test.txt")


def _files(base: str, names: tuple[str, ...], sha256: Mapping[str, str] | None = None) -> tuple[RemoteFile, ...]:
    sha256 = sha256 or {}
    return tuple(RemoteFile(n, f"{base}/{n}", sha256.get(n)) for n in names)


def _counts(entities: int, relations: int, train: int, valid: int, test: int, **extra: int) -> dict[str, int]:
    return {
        "entities": entities,
        "relations": relations,
        "train": train,
        "valid": valid,
        "test": test,
        **extra,
    }


_CODEX_TYPES = (
    RemoteFile(
        ENTITY_TYPES_FILE,
        f"{_CODEX}/types/entity2types.json",
        "9c3797961498fc312a6d62c798b250c3ad501578a8ac07c0829a2862c627a878",
    ),
    RemoteFile(
        TYPE_LABELS_FILE,
        f"{_CODEX}/types/en/types.json",
        "2934c3bac72fd9e7dc8a6452a84845e8fa232264aaa505c4b81cad2b0e7c5626",
    ),
)


def _codex(size: str, counts: dict[str, int], sha256: Mapping[str, str] | None = None) -> DatasetRecipe:
    name = f"codex-{size}"
    note = "" if sha256 else "; checksums unknown"
    return DatasetRecipe(
        name,
        f"CoDEx-{size.upper()} (Safavi & Koutra 2020), Wikidata, with entity types{note}",
        _files(f"{_CODEX}/triples/{name}", _SPLITS, sha256),
        counts,
        folders=(f"codex/{name}",),
        type_files=_CODEX_TYPES,
    )


DATASETS: dict[str, DatasetRecipe] = {
    "fb15k-237": DatasetRecipe(
        "fb15k-237",
        "FB15k-237 (Toutanova & Chen 2015), Freebase without inverse leakage",
        _files(
            f"{_KGE}/FB15k-237",
            ("entities.dict", "relations.dict", *_SPLITS),
            {
                "entities.dict": "55666c4fb9c2990ef809e41d3a0023503b1f927fd00a1c947f21a805608f50ac",
                "relations.dict": "e98ebcc621a217ca80d44992cdf0ef5f0eb355ff9aff0ba1a3e939f6ca8fb095",
                "train.txt": "6e4c2782169af21e9743f3b1d200886f5d595bf6bc504ec1351720949c5cdfae",
                "valid.txt": "cf6309010852f6a8d47a45df830a426415d1ee6f7a3970a8376ff1fb81db4a5c",
                "test.txt": "5711cf41623ceb4eacc50eb6108a3ca6565c7492e3caaf82a3e355cc660d1574",
            },
        ),
        _counts(14541, 237, 272115, 17535, 20466, unseen_entities=36),
    ),
    "wn18rr": DatasetRecipe(
        "wn18rr",
        "WN18RR (Dettmers et al. 2018), WordNet without inverse leakage",
        _files(
            f"{_KGE}/wn18rr",
            ("entities.dict", "relations.dict", *_SPLITS),
            {
                "entities.dict": "3dc41455a835d7523b68a2d449a8ae9429ba8cf8be7db7e29b4cbadf6fbc092f",
                "relations.dict": "0cf033f5ea243c938d86e8e5e89b43676df040b9196ce495b92382e54ad59916",
                "train.txt": "038612e783c215ee5f3ca9fbfca27b8d0739be1028fe4ee7c174aecf0b83d5df",
                "valid.txt": "453ce7202afa58094a04d2b1560ee2b02660f1c260b32ce6651c8ccedd1028ab",
                "test.txt": "0383bceaaa1096cf3c03ec021ed0048068e2355dbfc0239b292cefdac821cec5",
            },
        ),
        _counts(40943, 11, 86835, 3034, 3134, unseen_entities=384),
    ),
    "umls": DatasetRecipe(
        "umls",
        "UMLS (Kok & Domingos 2007), ConvE split",
        _files(
            f"{_PYKEEN}/umls",
            _SPLITS,
            {
                "train.txt": "873ef4925516b83e7f6f8cc02b4be51d848828710a7f65a956f0ac4a9e452f35",
                "valid.txt": "025c98f8a4891e2a6582ec5b40ee0d904031edad9c52554522f4b7904820c98e",
                "test.txt": "a7eb529a3d2810fcc96341ccc97c625a5e202f8389673aa6bd317eeebbb79014",
            },
        ),
        _counts(135, 46, 5216, 652, 661),
    ),
    "nations": DatasetRecipe(
        "nations",
        "Nations (Kok & Domingos 2007), ConvE split",
        _files(
            f"{_PYKEEN}/nations",
            _SPLITS,
            {
                "train.txt": "0830fa9da8e5bba2ccdaa45b7bdc9130451ba66b09ff2708f35fccaf82473e57",
                "valid.txt": "2b337a62e51a2f45c283eac98a70d21b7e0e102136be1539b2a52c652a7b0530",
                "test.txt": "3971085165b47b6aeaec68058c6d8d98b3005e929db81268410b95ae4db770ab",
            },
        ),
        _counts(14, 55, 1592, 199, 201),
    ),
    # No checksum known for Kinship: the offline copy does not include it; downloads warn.
    "kinship": DatasetRecipe(
        "kinship",
        "Kinship (Kemp et al. 2006), ConvE split; checksums unknown",
        _files(f"{_PYKEEN}/kinships", _SPLITS),
        _counts(104, 25, 8544, 1068, 1074),
    ),
    "codex-s": _codex(
        "s",
        _counts(2034, 42, 32888, 1827, 1828, types=502),
        {
            "train.txt": "64f93b7f314f3936a6f65739721429db3f6a7c8f5a1e1104ec3bb544f7434f59",
            "valid.txt": "3831c0e57daef03c3a18cdd1a72e370b496f696c5218883d35c7d2ab8a6a772c",
            "test.txt": "27127fcb34688c4778e88a39ef3c9b540807da846021e9d9685660ac1838aca1",
        },
    ),
    # CoDEx-M/L, YAGO3-10: counts from the papers, no checksums known (not in the offline copy).
    "codex-m": _codex("m", _counts(17050, 51, 185584, 10310, 10311)),
    "codex-l": _codex("l", _counts(77951, 69, 551193, 30622, 30622)),
    "yago3-10": DatasetRecipe(
        "yago3-10",
        "YAGO3-10 (Mahdisoltani et al. 2015; Dettmers et al. 2018); checksums unknown",
        _files(f"{_KGE}/YAGO3-10", ("entities.dict", "relations.dict", *_SPLITS)),
        _counts(123182, 37, 1079040, 5000, 5000),
    ),
}
"""Every downloadable dataset by name; ``"synthetic"`` is generated instead (see :func:`synthetic_kg`)."""


def recipe_table() -> str:
    """Every recipe file as tab-separated ``dataset  file  sha256  url`` lines (``datasets/sources.tsv``)."""
    lines = ["dataset\tfile\tsha256\turl"]
    for recipe in DATASETS.values():
        for f in (*recipe.files, *recipe.type_files):
            lines.append(f"{recipe.name}\t{f.name}\t{f.sha256 or 'unknown'}\t{f.url}")
    return "\n".join(lines) + "\n"
