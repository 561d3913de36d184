"""Object schemas of the simulated tenant: field names, data types, lookups, picklists.

Field names and types follow ``shared/gainsight-api.md`` §1-§3. Dates are stored
internally as integer epoch milliseconds (a DATE is midnight UTC) and rendered per
object as epoch ms or ISO text at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal[
    "GSID", "STRING", "RICHTEXT", "CURRENCY", "NUMBER", "BOOLEAN", "PICKLIST", "LOOKUP",
    "DATE", "DATETIME",
]  # fmt: skip

# GSID prefixes (gainsight-api.md §0). The goal prefix is a guess: no public sample shows one.
PREFIX_COMPANY = "1P02"
PREFIX_USER = "1P01"
PREFIX_CTA = "1S01"
PREFIX_PICKLIST = "1I00"
PREFIX_GOAL = "1S05"
PREFIX_DELETE_LOG = "1Z02"
PREFIX_TIMELINE = "1A01"

# Canonical object names (the query path matches them case-insensitively).
COMPANY = "Company"
CTA = "call_to_action"
GOAL = "cs_goal"
USER = "gsuser"
DELETE_LOG = "record_delete_log"
TIMELINE = "activity_timeline"


@dataclass(frozen=True)
class FieldDef:
    """One field: its API name, data type and, for lookups/picklists, what it points at."""

    name: str
    type: FieldType
    target: str | None = None  # LOOKUP: object name; PICKLIST: picklist category
    mutable: bool = True


@dataclass(frozen=True)
class ObjectSchema:
    name: str
    prefix: str
    fields: tuple[FieldDef, ...]
    by_lower: dict[str, FieldDef] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_lower.update({f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (case-insensitive), or ``None``."""
        return self.by_lower.get(name.lower())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _f(name: str, type_: FieldType, target: str | None = None, *, mutable: bool = True) -> FieldDef:
    return FieldDef(name, type_, target, mutable)


_SYSTEM = (
    _f("CreatedDate", "DATETIME", mutable=False),
    _f("ModifiedDate", "DATETIME", mutable=False),
    _f("CreatedBy", "LOOKUP", USER, mutable=False),
    _f("ModifiedBy", "LOOKUP", USER, mutable=False),
)

COMPANY_SCHEMA = ObjectSchema(
    COMPANY,
    PREFIX_COMPANY,
    (
        _f("Gsid", "GSID", mutable=False),
        _f("Name", "STRING"),
        _f("Arr", "CURRENCY"),
        _f("Mrr", "CURRENCY"),
        _f("Employees", "NUMBER"),
        _f("Users", "NUMBER"),
        _f("Industry", "PICKLIST", "Industry"),
        _f("CompanyType", "PICKLIST", "CompanyType"),
        _f("Stage", "PICKLIST", "Stage"),
        _f("Status", "PICKLIST", "Status"),
        _f("Csm", "LOOKUP", USER),
        _f("RenewalDate", "DATE"),
        _f("OriginalContractDate", "DATE"),
        _f("TickerSymbol", "STRING"),
        _f("SfdcAccountId", "STRING"),
        _f("Nps", "NUMBER"),
        *_SYSTEM,
    ),
)

USER_SCHEMA = ObjectSchema(
    USER,
    PREFIX_USER,
    (
        _f("Gsid", "GSID", mutable=False),
        _f("Name", "STRING"),
        _f("Email", "STRING"),
        _f("CreatedDate", "DATETIME", mutable=False),
        _f("ModifiedDate", "DATETIME", mutable=False),
    ),
)

CTA_SCHEMA = ObjectSchema(
    CTA,
    PREFIX_CTA,
    (
        _f("Gsid", "GSID", mutable=False),
        _f("Name", "STRING"),
        _f("CompanyId", "LOOKUP", COMPANY),
        _f("EntityType", "STRING"),
        _f("OwnerId", "LOOKUP", USER),
        _f("TypeId", "PICKLIST", "CtaType"),
        _f("StatusId", "PICKLIST", "CtaStatus"),
        _f("PriorityId", "PICKLIST", "CtaPriority"),
        _f("ReasonId", "PICKLIST", "CtaReason"),
        _f("DueDate", "DATE"),
        _f("IsClosed", "BOOLEAN"),
        _f("IsImportant", "BOOLEAN"),
        _f("Comments", "RICHTEXT"),
        *_SYSTEM,
    ),
)

GOAL_SCHEMA = ObjectSchema(
    GOAL,
    PREFIX_GOAL,
    (
        _f("Gsid", "GSID", mutable=False),
        _f("Name", "STRING"),
        _f("Description", "RICHTEXT"),
        _f("Status", "PICKLIST", "GoalStatus"),
        _f("StatusName", "STRING"),
        _f("DueDate", "DATE"),
        _f("EntityType", "STRING"),
        _f("CompanyId", "LOOKUP", COMPANY),
        *_SYSTEM,
    ),
)

DELETE_LOG_SCHEMA = ObjectSchema(
    DELETE_LOG,
    PREFIX_DELETE_LOG,
    (
        _f("Gsid", "GSID", mutable=False),
        _f("RecordId", "STRING", mutable=False),
        _f("ObjectName", "STRING", mutable=False),
        _f("DeletedOn", "DATETIME", mutable=False),
    ),
)

TIMELINE_SCHEMA = ObjectSchema(
    TIMELINE,
    PREFIX_TIMELINE,
    (
        _f("Gsid", "GSID", mutable=False),
        _f("Subject", "STRING"),
        _f("Notes", "RICHTEXT"),
        _f("ActivityDate", "DATETIME"),
        _f("GsCompanyId", "LOOKUP", COMPANY),
        _f("AuthorId", "LOOKUP", USER),
        _f("CreatedDate", "DATETIME", mutable=False),
        _f("LastModifiedDate", "DATETIME", mutable=False),
    ),
)

SCHEMAS: dict[str, ObjectSchema] = {
    s.name: s
    for s in (
        COMPANY_SCHEMA,
        USER_SCHEMA,
        CTA_SCHEMA,
        GOAL_SCHEMA,
        DELETE_LOG_SCHEMA,
        TIMELINE_SCHEMA,
    )
}

# Picklist categories and their labels, in display order.
PICKLISTS: dict[str, tuple[str, ...]] = {
    "Industry": (
        "Software", "Healthcare", "Financial Services", "Retail", "Manufacturing",
        "Education", "Media", "Telecommunications",
    ),
    "CompanyType": ("Customer", "Prospect", "Partner", "Former Customer"),
    "Stage": ("New Customer", "Kicked Off", "Launched", "Adopting", "Mature", "Renewal", "Churned"),
    "Status": ("Active", "Inactive", "Churn"),
    "CtaType": ("Risk", "Expansion", "Lifecycle", "Activity", "Objective"),
    "CtaStatus": ("New", "Work In Progress", "Closed Success", "Closed Lost"),
    "CtaPriority": ("Low", "Medium", "High"),
    "CtaReason": ("Low Usage", "Support Escalation", "Renewal Risk", "Upsell Opportunity", "Other"),
    "GoalStatus": ("New", "In Progress", "On Hold", "Completed", "Cancelled"),
}  # fmt: skip

CLOSED_CTA_STATUSES = frozenset({"Closed Success", "Closed Lost"})
