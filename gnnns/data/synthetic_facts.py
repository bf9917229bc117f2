"""The facts of a drawn toy world as ``(head, tail)`` pairs per relation, derived relations materialised exactly."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gnnns.data.synthetic_population import _Families, _group_start, _Places


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
