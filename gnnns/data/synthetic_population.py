"""The seeded draws of the toy world of :func:`~gnnns.data.synthetic_kg`: places, families, homes, employers.

Every draw comes from the one :class:`torch.Generator` that ``synthetic_kg`` passes in, in the order it calls them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class _Families(NamedTuple):
    generation: Tensor  # [P] 0, 1 or 2
    parents: Tensor  # [P, 2] the two parents, -1 for the founding generation
    couples: Tensor  # [C, 2] married pairs


class _Places(NamedTuple):
    city_country: Tensor  # [num_cities]
    country_continent: Tensor  # [num_countries]


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
