"""Seeded, realistic records for the simulated tenant (pure: a ``random.Random`` in, dicts out).

Values use the internal representation: dates are epoch milliseconds (DATE = midnight
UTC), picklists and lookups hold GSIDs, currencies are floats.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

from watcher.sim.schema import (
    CLOSED_CTA_STATUSES,
    PICKLISTS,
    PREFIX_PICKLIST,
    PREFIX_USER,
)

ALNUM = string.ascii_uppercase + string.digits
DAY_MS = 86_400_000

_PREFIXES = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Massive",
    "Pied Piper",
    "Aperture",
    "Black Mesa",
    "Monarch",
    "Virtucon",
    "Nakatomi",
    "Dunder",
    "Sterling",
    "Bluth",
    "Prestige",
    "Blue Sun",
    "Vehement",
    "Spacely",
    "Cogswell",
    "Ollivander",
    "Zorg",
    "Krusty",
    "Duff",
)
_SUFFIXES = (
    "Inc",
    "Corp",
    "LLC",
    "Group",
    "Systems",
    "Labs",
    "Holdings",
    "Industries",
    "Analytics",
    "Networks",
    "Software",
    "Partners",
    "Health",
    "Logistics",
    "Media",
    "Foods",
    "Energy",
)
_FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Radia",
    "Tim",
    "Frances",
    "John",
    "Sophie",
    "Edsger",
    "Hedy",
    "Donald",
    "Katherine",
    "Guido",
    "Anita",
    "Bjarne",
)
_LAST = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Perlman",
    "Berners-Lee",
    "Allen",
    "McCarthy",
    "Wilson",
    "Dijkstra",
    "Lamarr",
    "Knuth",
    "Johnson",
    "van Rossum",
    "Borg",
    "Stroustrup",
)
_CTA_NAMES = (
    "Low product usage",
    "Renewal in 90 days",
    "Executive sponsor left",
    "Upsell seats",
    "Onboarding kickoff",
    "QBR due",
    "Support escalation",
    "NPS detractor follow-up",
    "Expansion: new region",
    "Champion change",
    "Adoption plan",
    "Overdue invoice",
)
_GOAL_NAMES = (
    "Reduce time to value",
    "Roll out to all teams",
    "Integrate with SSO",
    "Reach 80% adoption",
    "Launch analytics module",
    "Train admins",
    "Migrate legacy data",
    "Cut ticket volume by 30%",
)


def seeded(seed: int) -> random.Random:
    """A deterministic generator for simulated data."""
    return random.Random(seed)  # noqa: S311  # reproducible test data, not security


def new_gsid(rng: random.Random, prefix: str) -> str:
    """A 36-character uppercase alphanumeric GSID starting with ``prefix``."""
    return prefix + "".join(rng.choices(ALNUM, k=36 - len(prefix)))


@dataclass
class Picklists:
    """Picklist items: category -> item GSIDs, and GSID -> label."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    by_label: dict[tuple[str, str], str] = field(default_factory=dict)

    def id_for(self, category: str, label: str) -> str:
        return self.by_label[(category, label.lower())]

    def label(self, gsid: str | None) -> str | None:
        return self.labels.get(gsid) if gsid else None


def make_picklists(rng: random.Random) -> Picklists:
    lists = Picklists()
    for category, labels in PICKLISTS.items():
        ids = []
        for label in labels:
            gsid = new_gsid(rng, PREFIX_PICKLIST)
            ids.append(gsid)
            lists.labels[gsid] = label
            lists.by_label[(category, label.lower())] = gsid
        lists.ids[category] = ids
    return lists


def make_users(rng: random.Random, count: int, now_ms: int) -> list[dict[str, Any]]:
    users = []
    for i in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        created = now_ms - rng.randrange(400, 2000) * DAY_MS
        users.append(
            {
                "Gsid": new_gsid(rng, PREFIX_USER),
                "Name": f"{first} {last}",
                "Email": f"{first}.{last}{i}@example.com".lower().replace(" ", ""),
                "CreatedDate": created,
                "ModifiedDate": created,
            }
        )
    return users


def _money(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def company_name(rng: random.Random, serial: int) -> str:
    return f"{rng.choice(_PREFIXES)} {rng.choice(_SUFFIXES)} {serial}"


def make_company(
    rng: random.Random,
    gsid: str,
    *,
    serial: int,
    now_ms: int,
    lists: Picklists,
    user_ids: list[str],
) -> dict[str, Any]:
    created = now_ms - rng.randrange(30, 1500) * DAY_MS - rng.randrange(DAY_MS)
    modified = min(now_ms, created + rng.randrange(0, 30) * DAY_MS + rng.randrange(DAY_MS))
    arr = _money(rng, 5_000, 2_000_000)
    contract = (created // DAY_MS) * DAY_MS
    return {
        "Gsid": gsid,
        "Name": company_name(rng, serial),
        "Arr": arr,
        "Mrr": round(arr / 12, 2),
        "Employees": rng.randrange(5, 50_000),
        "Users": rng.randrange(1, 5_000),
        "Industry": rng.choice(lists.ids["Industry"]),
        "CompanyType": rng.choice(lists.ids["CompanyType"]),
        "Stage": rng.choice(lists.ids["Stage"]),
        "Status": rng.choice(lists.ids["Status"]),
        "Csm": rng.choice(user_ids) if rng.random() > 0.05 else None,
        "RenewalDate": (now_ms // DAY_MS + rng.randrange(-60, 400)) * DAY_MS,
        "OriginalContractDate": contract,
        "TickerSymbol": None if rng.random() < 0.7 else "".join(rng.choices(ALNUM[:26], k=4)),
        "SfdcAccountId": "001" + "".join(rng.choices(ALNUM, k=15)),
        "Nps": rng.randrange(-100, 101) if rng.random() > 0.3 else None,
        "CreatedDate": created,
        "ModifiedDate": modified,
        "CreatedBy": user_ids[0],
        "ModifiedBy": rng.choice(user_ids),
    }


def make_cta(
    rng: random.Random,
    gsid: str,
    *,
    now_ms: int,
    lists: Picklists,
    user_ids: list[str],
    company_ids: list[str],
) -> dict[str, Any]:
    created = now_ms - rng.randrange(1, 200) * DAY_MS - rng.randrange(DAY_MS)
    modified = min(now_ms, created + rng.randrange(0, 10) * DAY_MS + rng.randrange(DAY_MS))
    status = rng.choice(lists.ids["CtaStatus"])
    return {
        "Gsid": gsid,
        "Name": rng.choice(_CTA_NAMES),
        "CompanyId": rng.choice(company_ids) if company_ids else None,
        "EntityType": "COMPANY",
        "OwnerId": rng.choice(user_ids),
        "TypeId": rng.choice(lists.ids["CtaType"]),
        "StatusId": status,
        "PriorityId": rng.choice(lists.ids["CtaPriority"]),
        "ReasonId": rng.choice(lists.ids["CtaReason"]),
        "DueDate": (now_ms // DAY_MS + rng.randrange(-30, 90)) * DAY_MS,
        "IsClosed": lists.labels[status] in CLOSED_CTA_STATUSES,
        "IsImportant": rng.random() < 0.2,
        "Comments": "<p>" + rng.choice(_CTA_NAMES) + "</p>" if rng.random() < 0.5 else None,
        "CreatedDate": created,
        "ModifiedDate": modified,
        "CreatedBy": rng.choice(user_ids),
        "ModifiedBy": rng.choice(user_ids),
    }


def make_goal(
    rng: random.Random,
    gsid: str,
    *,
    now_ms: int,
    lists: Picklists,
    user_ids: list[str],
    company_ids: list[str],
) -> dict[str, Any]:
    created = now_ms - rng.randrange(1, 300) * DAY_MS - rng.randrange(DAY_MS)
    modified = min(now_ms, created + rng.randrange(0, 20) * DAY_MS + rng.randrange(DAY_MS))
    status = rng.choice(lists.ids["GoalStatus"])
    name = rng.choice(_GOAL_NAMES)
    return {
        "Gsid": gsid,
        "Name": name,
        "Description": f"<p>{name}: agreed with the customer.</p>",
        "Status": status,
        "StatusName": lists.labels[status],
        "DueDate": (now_ms // DAY_MS + rng.randrange(-30, 180)) * DAY_MS,
        "EntityType": "COMPANY",
        "CompanyId": rng.choice(company_ids) if company_ids else None,
        "CreatedDate": created,
        "ModifiedDate": modified,
        "CreatedBy": rng.choice(user_ids),
        "ModifiedBy": rng.choice(user_ids),
    }


# Random field changes for the mutation driver: object -> field -> value maker.
def random_change(
    rng: random.Random,
    object_name: str,
    *,
    record: dict[str, Any],
    lists: Picklists,
    user_ids: list[str],
    now_ms: int,
) -> dict[str, Any]:
    """One to three realistic field changes for ``record`` (internal representation)."""
    from watcher.sim.schema import COMPANY, CTA, GOAL

    changes: dict[str, Any] = {}
    if object_name == COMPANY:
        options: tuple[str, ...] = (
            "Arr",
            "Employees",
            "Stage",
            "Status",
            "Csm",
            "RenewalDate",
            "Name",
            "Nps",
        )
    elif object_name == CTA:
        options = ("StatusId", "PriorityId", "DueDate", "OwnerId", "IsImportant", "Name")
    elif object_name == GOAL:
        options = ("Status", "DueDate", "Description", "Name")
    else:
        raise ValueError(f"no random changes defined for object {object_name!r}")
    for name in rng.sample(options, k=rng.randint(1, 3)):
        if name == "Arr":
            arr = round(max(0.0, float(record.get("Arr") or 0) * rng.uniform(0.7, 1.4)), 2)
            changes["Arr"] = arr
            changes["Mrr"] = round(arr / 12, 2)
        elif name in ("Employees", "Nps"):
            changes[name] = (
                rng.randrange(5, 50_000) if name == "Employees" else rng.randrange(-100, 101)
            )
        elif name in ("Stage", "Status", "StatusId", "PriorityId"):
            category = {
                "Stage": "Stage",
                "Status": "GoalStatus" if object_name == GOAL else "Status",
                "StatusId": "CtaStatus",
                "PriorityId": "CtaPriority",
            }[name]
            choices = [g for g in lists.ids[category] if g != record.get(name)]
            changes[name] = rng.choice(choices)
            if name == "StatusId":
                changes["IsClosed"] = lists.labels[changes[name]] in CLOSED_CTA_STATUSES
            if object_name == GOAL:
                changes["StatusName"] = lists.labels[changes[name]]
        elif name in ("Csm", "OwnerId"):
            changes[name] = rng.choice(user_ids)
        elif name in ("RenewalDate", "DueDate"):
            changes[name] = (now_ms // DAY_MS + rng.randrange(-30, 400)) * DAY_MS
        elif name == "IsImportant":
            changes[name] = not record.get(name)
        elif name == "Name":
            base = str(record.get("Name") or "")
            changes[name] = (base.rsplit(" (", 1)[0] + f" ({rng.randrange(1000)})").strip()
        elif name == "Description":
            changes[name] = f"<p>Updated plan {rng.randrange(10_000)}</p>"
    return changes
