"""A seeded, typed toy world of families, places and organisations: the embedded default dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from gnnns.data.graph import KnowledgeGraph
from gnnns.data.readers import split_report

TYPE_NAMES = ("person", "city", "country", "continent", "organisation", "club")
NAME_PREFIXES = ("person", "city", "country", "continent", "org", "club")

RELATIONS = (
    "spouse_of",  # symmetric, 1-1
    "sibling_of",  # symmetric, child_of ∘ parent_of minus self
    "friend_of",  # symmetric, N-N
    "colleague_of",  # symmetric, works_for ∘ employs minus self
    "parent_of",  # N-N, inverse of child_of
    "child_of",
    "grandparent_of",  # parent_of ∘ parent_of
    "born_in",  # N-1
    "lives_in",  # N-1
    "located_in",  # N-1: city -> country, country -> continent
    "capital_of",  # 1-1
    "lives_in_country",  # lives_in ∘ located_in
    "citizen_of",  # born_in ∘ located_in
    "works_for",  # N-1, inverse of employs
    "employs",  # 1-N
    "ceo_of",  # 1-1
    "headquartered_in",  # N-1: organisation or club -> city
    "member_of",  # N-N: person -> club
)

DEFAULT_STATS = {"entities": 2866, "relations": 18, "train": 34725, "valid": 1929, "test": 1929}
"""Counts of ``synthetic_kg()`` with its defaults (checked by the tests)."""


class _Families(NamedTuple):
    generation: Tensor  # [P] 0, 1 or 2
    parents: Tensor  # [P, 2] the two parents, -1 for the founding generation
    couples: Tensor  # [C, 2] married pairs


class _Places(NamedTuple):
    city_country: Tensor  # [num_cities]
    country_continent: Tensor  # [num_countries]


def synthetic_kg(
    num_people: int = 2200,
    num_cities: int = 80,
    num_countries: int = 12,
    num_continents: int = 4,
    num_orgs: int = 450,
    num_clubs: int = 120,
    seed: int = 0,
    split: tuple[float, float, float] = (0.9, 0.05, 0.05),
    name: str = "synthetic",
) -> KnowledgeGraph:
    r"""A seeded toy knowledge graph whose held-out triples follow from patterns in training.

    The generative process (every draw from one :class:`torch.Generator` seeded with ``seed``):

    1. **Places.** Each country lies on a continent (every continent gets one); city :math:`i`
       is the capital of country :math:`i`, every other city lies in a random country.
    2. **Families**, three generations of people (30 / 35 / 35 %). The founders marry in pairs and
       each couple settles in a random city. Every second-generation person is the child of a
       random founding couple, and 80 % of them marry a non-sibling of their generation. Every
       third-generation person is the child of a random second-generation couple. Children are
       born in their parents' city and 75 % of them live there (the others moved to a random city);
       a married couple shares one home; founders were born where they live with probability
       0.6, elsewhere at random.
    3. **Work and leisure.** Organisations and clubs are headquartered in cities: one in each city
       first, the rest where a random person lives. 85 % of the second and third generation work
       for an organisation of their city (dealt round-robin in random order, so organisations of
       a city have similar sizes); each organisation with staff has one CEO among them. People
       join up to three random clubs of their country (each draw with probability 0.9, 0.7,
       0.5) and befriend one person (a second one with probability 0.3) of their generation
       and city.
    4. **Derived facts**, materialised exactly: inverses (``child_of``, ``employs``), symmetric
       closure (``spouse_of``, ``sibling_of``, ``friend_of``, ``colleague_of``) and compositions

       .. math::
           \text{grandparent\_of} = \text{parent\_of} \circ \text{parent\_of}, \quad
           \text{lives\_in\_country} = \text{lives\_in} \circ \text{located\_in},

           \text{citizen\_of} = \text{born\_in} \circ \text{located\_in}, \quad
           \text{colleague\_of} = \text{works\_for} \circ \text{employs} \setminus \text{id}, \quad
           \text{sibling\_of} = \text{child\_of} \circ \text{parent\_of} \setminus \text{id}.

    5. **Split.** The distinct triples are permuted and cut into train/valid/test by ``split``.
       About two thirds of the held-out triples keep their inverse, symmetric partner or a
       composition path in train; the rest are drawn facts that correlate with others (children
       live where their parents do, people work, join and befriend in their city or country).
       Link prediction is therefore learnable: ComplEx (1-vs-all, 50 complex dimensions) reached a
       filtered test MRR of about 0.8, and RotatE (uniform negatives, self-adversarial weights)
       about 0.55, after ~100 s on one CPU core.

    Relations cover every cardinality class by tails-per-head / heads-per-tail (1-1
    ``spouse_of``, ``capital_of``, ``ceo_of``; 1-N ``employs``; N-1 ``born_in``, ``lives_in``,
    ``works_for``, ``located_in`` ...; N-N ``friend_of``, ``member_of``, ``parent_of`` ...).
    Entities are named ``person_17``, ``city_3``, ``country_2``, ``continent_1``, ``org_5``,
    ``club_4`` and have one type each (:data:`TYPE_NAMES`), in that id order.

    With the defaults (:data:`DEFAULT_STATS`): 2,866 entities, 18 relations, 34,725 / 1,929 /
    1,929 train/valid/test triples, generated in well under a second.

    Args:
        num_people (int): number of people, at least 100. (default: ``2200``)
        num_cities (int): number of cities, at least ``num_countries``. (default: ``80``)
        num_countries (int): number of countries, at least ``num_continents``. (default: ``12``)
        num_continents (int): number of continents. (default: ``4``)
        num_orgs (int): number of organisations (employers), at least 1. (default: ``450``)
        num_clubs (int): number of clubs, at least 1. (default: ``120``)
        seed (int): seed of every random draw; equal seeds give identical tensors. (default: ``0``)
        split (tuple[float, float, float]): train/valid/test fractions. (default: ``(0.9, 0.05, 0.05)``)
        name (str): dataset name. (default: ``"synthetic"``)

    Returns:
        KnowledgeGraph with ``entity_types [E, 2]`` (one type per entity), ``type_names`` and a
        ``report`` dict as :func:`~gnnns.data.read_folder` gives.
    """
    if not num_continents <= num_countries <= num_cities:
        raise ValueError("expected num_continents <= num_countries <= num_cities")
    if num_people < 100 or num_orgs < 1 or num_clubs < 1:
        raise ValueError(
            f"expected num_people >= 100, num_orgs >= 1, num_clubs >= 1, got {num_people}, {num_orgs}, {num_clubs}"
        )
    g = torch.Generator().manual_seed(seed)
    counts = (num_people, num_cities, num_countries, num_continents, num_orgs, num_clubs)
    offsets = torch.tensor((0, *counts)).cumsum(0).tolist()
    places = _places(num_cities, num_countries, num_continents, g)
    families = _families(num_people, g)
    lives, born = _residence(families, num_cities, g)
    org_city = _headquarters(num_orgs, lives, num_cities, g)
    club_city = _headquarters(num_clubs, lives, num_cities, g)
    employer = _employment(families.generation, lives, org_city, g)
    world = _World(offsets, places, families, lives, born, org_city, club_city, employer, g)
    facts = world.facts()
    triples = torch.cat([_pairs_to_triples(facts[rel], RELATIONS.index(rel)) for rel in RELATIONS if len(facts[rel])])
    train, valid, test = _split(triples, split, g)
    types = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    kg = KnowledgeGraph(
        train,
        valid,
        test,
        num_entities=offsets[-1],
        num_relations=len(RELATIONS),
        entity_names=[f"{prefix}_{i}" for prefix, n in zip(NAME_PREFIXES, counts, strict=True) for i in range(n)],
        relation_names=list(RELATIONS),
        entity_types=torch.stack([torch.arange(offsets[-1]), types], 1),
        type_names=list(TYPE_NAMES),
        name=name,
    )
    kg.report = split_report(kg)
    return kg


def _places(num_cities: int, num_countries: int, num_continents: int, g: torch.Generator) -> _Places:
    country_continent = torch.arange(num_countries) % num_continents
    country_continent = country_continent[torch.randperm(num_countries, generator=g)]
    others = torch.randint(num_countries, (num_cities - num_countries,), generator=g)
    return _Places(torch.cat([torch.arange(num_countries), others]), country_continent)


def _families(num_people: int, g: torch.Generator) -> _Families:
    n0 = int(0.3 * num_people) // 2 * 2
    n1 = int(0.35 * num_people)
    generation = torch.cat([torch.zeros(n0), torch.ones(n1), torch.full((num_people - n0 - n1,), 2.0)]).long()
    parents = torch.full((num_people, 2), -1)
    founders = torch.arange(n0).view(-1, 2)
    gen1 = torch.arange(n0, n0 + n1)
    parents[gen1] = founders[torch.randint(len(founders), (n1,), generator=g)]
    # Marry 80 % of the second generation in random pairs; a pair of siblings stays unmarried.
    order = gen1[torch.randperm(n1, generator=g)][: int(0.8 * n1) // 2 * 2].view(-1, 2)
    married = order[parents[order[:, 0], 0] != parents[order[:, 1], 0]]
    gen2 = torch.arange(n0 + n1, num_people)
    parents[gen2] = married[torch.randint(len(married), (len(gen2),), generator=g)]
    return _Families(generation, parents, torch.cat([founders, married]))


def _residence(families: _Families, num_cities: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """City each person lives in and was born in, both ``[P]``."""
    num_people = len(families.generation)
    lives = torch.full((num_people,), -1)
    born = torch.full((num_people,), -1)
    founders = families.generation == 0
    couples = families.couples
    for gen in (0, 1, 2):
        members = torch.nonzero(families.generation == gen).flatten()
        if gen == 0:
            home = torch.randint(num_cities, (len(members),), generator=g)
        else:
            # Children are born where their parents live, and most stay there.
            home = lives[families.parents[members, 0]]
            born[members] = home
            moved = torch.rand(len(members), generator=g) < 0.25
            home = torch.where(moved, torch.randint(num_cities, (len(members),), generator=g), home)
        lives[members] = home
        # A couple of this generation shares the home of its first partner.
        ours = couples[families.generation[couples[:, 0]] == gen]
        lives[ours[:, 1]] = lives[ours[:, 0]]
    stayed = torch.rand(num_people, generator=g) < 0.6
    elsewhere = torch.randint(num_cities, (num_people,), generator=g)
    born[founders] = torch.where(stayed, lives, elsewhere)[founders]
    return lives, born


def _headquarters(num: int, lives: Tensor, num_cities: int, g: torch.Generator) -> Tensor:
    """City of each of ``num`` organisations, ``[num]``.

    Every city gets one before any gets two; the rest go where a random person lives, so big cities
    get more.
    """
    first = torch.arange(min(num, num_cities))
    rest = lives[torch.randint(len(lives), (max(num - num_cities, 0),), generator=g)]
    return torch.cat([first, rest])


def _employment(generation: Tensor, lives: Tensor, org_city: Tensor, g: torch.Generator) -> Tensor:
    """Employer of each person, ``[P]``, -1 for none (founders are retired).

    Workers are dealt round-robin, in random order, over the organisations of their city, so every
    organisation of a city with enough workers has staff.
    """
    working = torch.nonzero((generation > 0) & (torch.rand(len(lives), generator=g) < 0.85)).flatten()
    city = lives[working]
    num_groups = int(max(city.max(), org_city.max())) + 1
    shuffled = torch.argsort(city * len(city) + torch.randperm(len(city), generator=g))
    rank = torch.empty_like(shuffled)
    rank[shuffled] = torch.arange(len(city)) - _group_start(city, num_groups)[city[shuffled]]
    orgs = torch.argsort(org_city, stable=True)
    size = torch.bincount(org_city, minlength=num_groups)[city]
    slot = (_group_start(org_city, num_groups)[city] + rank % size.clamp(min=1)).clamp(max=len(orgs) - 1)
    employer = torch.full_like(lives, -1)
    employer[working] = torch.where(size > 0, orgs[slot], -1)
    return employer


def _group_start(group: Tensor, num_groups: int) -> Tensor:
    """Position of each group's first member once ``group`` is sorted, ``[num_groups]``."""
    size = torch.bincount(group, minlength=num_groups)
    return torch.cumsum(size, 0) - size


def _pick_in_group(item_group: Tensor, query_group: Tensor, g: torch.Generator) -> Tensor:
    """For each query a uniformly random item of the same group, or -1 if the group is empty.

    Args:
        item_group (Tensor): group of each item, shape ``[I]``.
        query_group (Tensor): group of each query, shape ``[Q]``.

    Returns:
        Item ids, shape ``[Q]``.
    """
    num_groups = int(max(item_group.max(), query_group.max())) + 1
    order = torch.argsort(item_group, stable=True)
    n = torch.bincount(item_group, minlength=num_groups)[query_group]
    offset = (torch.rand(len(query_group), generator=g) * n).long().clamp(max=(n - 1).clamp(min=0))
    picked = order[(_group_start(item_group, num_groups)[query_group] + offset).clamp(max=len(order) - 1)]
    return torch.where(n > 0, picked, -1)


@dataclass
class _World:
    """The drawn world; its methods give every fact as ``(head, tail)`` pairs of global entity ids."""

    offsets: list[int]  # first global id of people, cities, countries, continents, orgs, clubs
    places: _Places
    families: _Families
    lives: Tensor  # [P] city
    born: Tensor  # [P] city
    org_city: Tensor  # [num_orgs]
    club_city: Tensor  # [num_clubs]
    employer: Tensor  # [P] organisation or -1
    g: torch.Generator

    def __post_init__(self):
        self.person, self.city, self.country, self.continent, self.org, self.club = self.offsets[:6]

    def facts(self) -> dict[str, Tensor]:
        facts = {**self._family_facts(), **self._place_facts(), **self._work_facts()}
        return {rel: torch.unique(pairs, dim=0) for rel, pairs in facts.items()}

    def _family_facts(self) -> dict[str, Tensor]:
        fam = self.families
        child = torch.nonzero(fam.parents[:, 0] >= 0).flatten()
        parent_of = torch.cat([torch.stack([fam.parents[child, k], child], 1) for k in (0, 1)])
        spouse = torch.cat([fam.couples, fam.couples.flip(1)])
        return {
            "spouse_of": spouse,
            "sibling_of": _compose(parent_of.flip(1), parent_of, drop_self=True),
            "friend_of": self._friends(),
            "parent_of": parent_of,
            "child_of": parent_of.flip(1),
            "grandparent_of": _compose(parent_of, parent_of),
        }

    def _friends(self) -> Tensor:
        num_people = len(self.lives)
        group = self.lives * 3 + self.families.generation
        people = torch.arange(num_people)
        second = torch.rand(num_people, generator=self.g) < 0.3
        asker = torch.cat([people, people[second]])
        friend = _pick_in_group(group, group[asker], self.g)
        pairs = torch.stack([asker, friend], 1)[(friend >= 0) & (friend != asker)]
        return torch.cat([pairs, pairs.flip(1)])

    def _place_facts(self) -> dict[str, Tensor]:
        num_people, num_cities = len(self.lives), len(self.places.city_country)
        people = torch.arange(num_people)
        city_country = self.places.city_country + self.country
        capitals = torch.arange(len(self.places.country_continent))
        return {
            "born_in": torch.stack([people, self.born + self.city], 1),
            "lives_in": torch.stack([people, self.lives + self.city], 1),
            "located_in": torch.cat(
                [
                    torch.stack([torch.arange(num_cities) + self.city, city_country], 1),
                    torch.stack([capitals + self.country, self.places.country_continent + self.continent], 1),
                ]
            ),
            "capital_of": torch.stack([capitals + self.city, capitals + self.country], 1),
            "lives_in_country": torch.stack([people, city_country[self.lives]], 1),
            "citizen_of": torch.stack([people, city_country[self.born]], 1),
        }

    def _work_facts(self) -> dict[str, Tensor]:
        staff = torch.nonzero(self.employer >= 0).flatten()
        works_for = torch.stack([staff, self.employer[staff] + self.org], 1)
        clubs = self._memberships()
        headquarters = torch.cat(
            [
                torch.stack([torch.arange(len(self.org_city)) + self.org, self.org_city + self.city], 1),
                torch.stack([torch.arange(len(self.club_city)) + self.club, self.club_city + self.city], 1),
            ]
        )
        return {
            "colleague_of": _compose(works_for, works_for.flip(1), drop_self=True),
            "works_for": works_for,
            "employs": works_for.flip(1),
            "ceo_of": self._ceos(staff, works_for),
            "headquartered_in": headquarters,
            "member_of": clubs,
        }

    def _ceos(self, staff: Tensor, works_for: Tensor) -> Tensor:
        """One random employee per organisation with staff, as ``(person, org)`` pairs."""
        rank = torch.randperm(len(staff), generator=self.g)
        order = torch.argsort(self.employer[staff] * len(staff) + rank)
        org = self.employer[staff][order]
        first = torch.ones_like(org, dtype=torch.bool)
        first[1:] = org[1:] != org[:-1]
        return works_for[order][first]

    def _memberships(self) -> Tensor:
        """Up to three clubs per person, drawn among the clubs of the person's country."""
        num_people = len(self.lives)
        people = torch.arange(num_people).unsqueeze(1).expand(-1, 3)
        asker = people[torch.rand(num_people, 3, generator=self.g) < torch.tensor([0.9, 0.7, 0.5])]
        country = self.places.city_country
        club = _pick_in_group(country[self.club_city], country[self.lives[asker]], self.g)
        keep = club >= 0
        return torch.stack([asker[keep], club[keep] + self.club], 1)


def _compose(first: Tensor, second: Tensor, drop_self: bool = False) -> Tensor:
    r"""Pairs :math:`(a, c)` with :math:`(a, b) \in` ``first`` and :math:`(b, c) \in` ``second``.

    Args:
        first (Tensor): shape ``[N, 2]``.
        second (Tensor): shape ``[M, 2]``.
        drop_self (bool): leave out :math:`(a, a)`.

    Returns:
        Distinct pairs, shape ``[K, 2]``.
    """
    # A sort-merge join: memory grows with the number of results, not with N * M.
    order = torch.argsort(second[:, 0])
    keys = second[order, 0].contiguous()
    middle = first[:, 1].contiguous()
    start = torch.searchsorted(keys, middle)
    count = torch.searchsorted(keys, middle, right=True) - start
    i = torch.repeat_interleave(torch.arange(len(first)), count)
    within = torch.arange(len(i)) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    pairs = torch.stack([first[i, 0], second[order[start[i] + within], 1]], 1)
    if drop_self:
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return torch.unique(pairs, dim=0)


def _pairs_to_triples(pairs: Tensor, relation: int) -> Tensor:
    rel = torch.full((len(pairs), 1), relation)
    return torch.cat([pairs[:, :1], rel, pairs[:, 1:]], 1)


def _split(triples: Tensor, fractions: tuple[float, float, float], g: torch.Generator) -> tuple[Tensor, ...]:
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split must be three non-negative fractions summing to 1, got {fractions}")
    perm = triples[torch.randperm(len(triples), generator=g)]
    n_valid = round(fractions[1] * len(perm))
    n_test = round(fractions[2] * len(perm))
    n_train = len(perm) - n_valid - n_test
    return perm[:n_train], perm[n_train : n_train + n_valid], perm[n_train + n_valid :]
