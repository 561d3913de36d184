"""In-memory state of the simulated tenant: records, mutations, the ground-truth change log,
delete logs with 15-day retention, and the per-tenant request budget (fixed 60 s window).

Every method takes the tenant lock, so tests may mutate from their own thread while the
server thread serves pages.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from watcher.clock import Clock, SystemClock
from watcher.dates import format_utc, from_epoch_ms, parse_iso, to_epoch_ms
from watcher.sim import data
from watcher.sim.options import Faults, SimOptions
from watcher.sim.schema import (
    CLOSED_CTA_STATUSES,
    COMPANY,
    CTA,
    DELETE_LOG,
    GOAL,
    PREFIX_DELETE_LOG,
    SCHEMAS,
    TIMELINE,
    USER,
    FieldDef,
    ObjectSchema,
)

ChangeKind = Literal["created", "updated", "deleted"]
RETENTION = timedelta(days=15)
MUTABLE_OBJECTS = (COMPANY, CTA, GOAL)


@dataclass(frozen=True)
class Change:
    """One ground-truth change. Values are rendered as the poll engine normalizes them:
    dates as ``YYYY-MM-DDTHH:MM:SS.fffZ``, picklists/lookups as GSIDs."""

    seq: int
    time: str
    object: str
    key: str
    change: ChangeKind
    fields: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "object": self.object,
            "key": self.key,
            "change": self.change,
            "fields": self.fields,
        }


@dataclass
class Table:
    schema: ObjectSchema
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _order: list[str] | None = None

    def order(self) -> list[str]:
        """Keys in insertion order, cached until a create or delete."""
        if self._order is None:
            self._order = list(self.records)
        return self._order

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["Gsid"]] = record
        if self._order is not None:
            self._order.append(record["Gsid"])

    def remove(self, key: str) -> dict[str, Any]:
        self._order = None
        return self.records.pop(key)


class Tenant:
    """The simulated Gainsight tenant."""

    def __init__(
        self,
        *,
        companies: int = 50,
        ctas: int = 20,
        goals: int = 5,
        users: int | None = None,
        seed: int = 1,
        clock: Clock | None = None,
        options: SimOptions | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.options = options or SimOptions()
        self.faults = faults or Faults()
        self.seed = seed
        self.lock = threading.RLock()
        self.version = 0
        self._changes: list[Change] = []
        self.deleted_ctas: dict[str, dict[str, Any]] = {}
        self._rate_minute: tuple[int, int] = (-1, 0)
        self._rate_day: tuple[str, int] = ("", 0)
        self.requests_served = 0
        self.cache: dict[tuple[Any, ...], tuple[int, list[str]]] = {}

        gen = data.seeded(seed)
        self.rng = data.seeded(seed * 7919 + 1)  # mutations
        self.fault_rng = data.seeded(seed * 104_729 + 2)  # faults, unstable order
        now = self.now_ms()
        self.picklists = data.make_picklists(gen)
        self.tables: dict[str, Table] = {name: Table(schema) for name, schema in SCHEMAS.items()}
        self._by_lower = {name.lower(): name for name in SCHEMAS}
        user_rows = data.make_users(
            gen, users if users is not None else max(5, companies // 200), now
        )
        for user in user_rows:
            self.tables[USER].add(user)
        self.user_ids = [u["Gsid"] for u in user_rows]
        self._serial = 0
        company_ids: list[str] = []
        for name, count in ((COMPANY, companies), (CTA, ctas), (GOAL, goals)):
            for _ in range(count):
                gsid = data.new_gsid(gen, SCHEMAS[name].prefix)
                self.tables[name].add(self._new_record(gen, name, gsid, now, company_ids))
                if name == COMPANY:
                    company_ids.append(gsid)
        for company_id in company_ids[: min(len(company_ids), 20)]:
            self.tables[TIMELINE].add(self._timeline_row(gen, company_id, now))

    def _new_record(
        self, rng: random.Random, name: str, gsid: str, now: int, company_ids: list[str]
    ) -> dict[str, Any]:
        """A realistic new company, CTA or goal (companies are numbered as created)."""
        if name == COMPANY:
            self._serial += 1
            return data.make_company(
                rng,
                gsid,
                serial=self._serial,
                now_ms=now,
                lists=self.picklists,
                user_ids=self.user_ids,
            )
        make = data.make_cta if name == CTA else data.make_goal
        return make(
            rng,
            gsid,
            now_ms=now,
            lists=self.picklists,
            user_ids=self.user_ids,
            company_ids=company_ids,
        )

    # -- time ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def now_ms(self) -> int:
        return to_epoch_ms(self.now())

    # -- reads --------------------------------------------------------------------------

    def object_name(self, name: str) -> str | None:
        """Canonical object name for ``name`` (case-insensitive), or ``None``."""
        return self._by_lower.get(name.lower())

    def table(self, name: str) -> Table:
        canonical = self.object_name(name)
        if canonical is None:
            raise KeyError(f"unknown object {name!r}")
        if canonical == DELETE_LOG:
            self.purge()
        return self.tables[canonical]

    def keys(self, object_name: str) -> list[str]:
        with self.lock:
            return list(self.table(object_name).order())

    def get(self, object_name: str, key: str) -> dict[str, Any] | None:
        """A copy of one record in the internal representation (dates as epoch ms)."""
        with self.lock:
            record = self.table(object_name).records.get(key)
            return dict(record) if record is not None else None

    def changes(self, after_seq: int = 0) -> list[Change]:
        """The ground-truth change log, oldest first, with ``seq > after_seq``."""
        with self.lock:
            if after_seq <= 0:
                return list(self._changes)
            # seq n sits at index n - 1
            return self._changes[after_seq:]

    @property
    def last_seq(self) -> int:
        return len(self._changes)

    # -- mutations ----------------------------------------------------------------------

    def mutate(
        self,
        op: ChangeKind | Literal["create", "update", "delete"],
        object_name: str,
        key: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Change:
        """Apply one create/update/delete; ``fields=None`` picks random realistic values,
        ``key=None`` on update/delete picks a random record."""
        kind = {"create": "created", "update": "updated", "delete": "deleted"}.get(op, op)
        if kind == "created":
            return self.create(object_name, fields)
        if kind == "updated":
            return self.update(object_name, key, fields)
        if kind == "deleted":
            return self.delete(object_name, key)
        raise ValueError(f"unknown mutation {op!r}; use create, update or delete")

    def create(self, object_name: str, fields: dict[str, Any] | None = None) -> Change:
        with self.lock:
            name = self._mutable(object_name)
            now = self.now_ms()
            gsid = data.new_gsid(self.rng, SCHEMAS[name].prefix)
            companies = self.tables[COMPANY].order()
            record = self._new_record(self.rng, name, gsid, now, companies)
            record.update(self._coerce(name, fields or {}))
            record["CreatedDate"] = record["ModifiedDate"] = now
            self.tables[name].add(record)
            diff = {k: {"old": None, "new": v} for k, v in record.items()}
            return self._log(name, gsid, "created", diff, now)

    def update(
        self, object_name: str, key: str | None = None, fields: dict[str, Any] | None = None
    ) -> Change:
        with self.lock:
            name = self._mutable(object_name)
            table = self.tables[name]
            key = key or self._pick(name)
            record = table.records.get(key)
            if record is None:
                raise KeyError(f"{name} {key!r} does not exist")
            now = self.now_ms()
            if fields is None:
                new = data.random_change(
                    self.rng,
                    name,
                    record=record,
                    lists=self.picklists,
                    user_ids=self.user_ids,
                    now_ms=now,
                )
                new["ModifiedBy"] = self.rng.choice(self.user_ids)
            else:
                new = self._coerce(name, fields)
            new["ModifiedDate"] = max(now, record["ModifiedDate"])
            diff = {
                k: {"old": record.get(k), "new": v} for k, v in new.items() if record.get(k) != v
            }
            record.update(new)
            return self._log(name, key, "updated", diff, now)

    def delete(self, object_name: str, key: str | None = None) -> Change:
        with self.lock:
            name = self._mutable(object_name)
            key = key or self._pick(name)
            if key not in self.tables[name].records:
                raise KeyError(f"{name} {key!r} does not exist")
            record = self.tables[name].remove(key)
            now = self.now_ms()
            self.tables[DELETE_LOG].add(
                {
                    "Gsid": data.new_gsid(self.rng, PREFIX_DELETE_LOG),
                    "RecordId": key,
                    "ObjectName": name,
                    "DeletedOn": now,
                }
            )
            if name == CTA:
                # Lenient: the delete stamps ModifiedDate. Strict: nothing documents that,
                # so the deleted row keeps the ModifiedDate of its last edit.
                stamp = record["ModifiedDate"] if self.options.strict_docs else now
                self.deleted_ctas[key] = {**record, "ModifiedDate": stamp, "DeletedOn": now}
            diff = {k: {"old": v, "new": None} for k, v in record.items()}
            return self._log(name, key, "deleted", diff, now)

    def random_mutations(self, n: int) -> list[Change]:
        """``n`` random creates (15%), updates (70%) and deletes (15%), deterministic from
        the seed; objects are picked in proportion to their size."""
        out = []
        with self.lock:
            for _ in range(n):
                sizes = [max(1, len(self.tables[o].records)) for o in MUTABLE_OBJECTS]
                name = self.rng.choices(MUTABLE_OBJECTS, weights=sizes)[0]
                roll = self.rng.random()
                if roll < 0.15 or not self.tables[name].records:
                    out.append(self.create(name))
                elif roll < 0.85:
                    out.append(self.update(name))
                else:
                    out.append(self.delete(name))
        return out

    def purge(self) -> None:
        """Drop delete-log rows and deleted CTAs older than 15 days."""
        with self.lock:
            cutoff = to_epoch_ms(self.now() - RETENTION)
            log = self.tables[DELETE_LOG]
            old = [k for k, r in log.records.items() if r["DeletedOn"] < cutoff]
            for key in old:
                log.remove(key)
            if old:
                self.version += 1
            for key in [k for k, r in self.deleted_ctas.items() if r["DeletedOn"] < cutoff]:
                del self.deleted_ctas[key]

    # -- rate limiting ------------------------------------------------------------------

    def admit(self) -> float | None:
        """Count one data request. ``None`` when admitted, else seconds until it would be."""
        with self.lock:
            now = self.now()
            stamp = now.timestamp()
            minute = int(stamp // 60)
            day = now.date().isoformat()
            m_window, m_count = self._rate_minute
            if m_window != minute:
                m_count = 0
            d_window, d_count = self._rate_day
            if d_window != day:
                d_count = 0
            if d_count >= self.options.requests_per_day:
                midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
                return max(1.0, midnight.replace(tzinfo=UTC).timestamp() - stamp)
            if m_count >= self.options.requests_per_minute:
                return max(1.0, (minute + 1) * 60 - stamp)
            self._rate_minute = (minute, m_count + 1)
            self._rate_day = (day, d_count + 1)
            self.requests_served += 1
            return None

    # -- helpers ------------------------------------------------------------------------

    def _mutable(self, object_name: str) -> str:
        name = self.object_name(object_name)
        if name not in MUTABLE_OBJECTS:
            raise ValueError(
                f"cannot mutate {object_name!r}; mutable objects: {', '.join(MUTABLE_OBJECTS)}"
            )
        return name

    def _pick(self, name: str) -> str:
        keys = self.tables[name].order()
        if not keys:
            raise KeyError(f"no {name} records left to change")
        return self.rng.choice(keys)

    def _coerce(self, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        schema = SCHEMAS[name]
        out: dict[str, Any] = {}
        for key, value in fields.items():
            fd = schema.field(key)
            if fd is None or not fd.mutable:
                raise ValueError(f"{name}: field {key!r} is unknown or read-only")
            out[fd.name] = self._coerce_value(fd, value)
        if name == GOAL and "Status" in out and "StatusName" not in out:
            out["StatusName"] = self.picklists.label(out["Status"])
        if name == CTA and out.get("StatusId") and "IsClosed" not in out:
            out["IsClosed"] = self.picklists.label(out["StatusId"]) in CLOSED_CTA_STATUSES
        return out

    def _coerce_value(self, fd: FieldDef, value: Any) -> Any:
        if value is None:
            return None
        if fd.type in ("DATE", "DATETIME"):
            if isinstance(value, datetime):
                ms = to_epoch_ms(value if value.tzinfo else value.replace(tzinfo=UTC))
            elif isinstance(value, str):
                parsed = parse_iso(value)
                if parsed is None:
                    raise ValueError(f"{fd.name}: {value!r} is not an ISO date")
                ms = to_epoch_ms(parsed)
            else:
                ms = int(value)
            return ms - ms % data.DAY_MS if fd.type == "DATE" else ms
        if fd.type == "PICKLIST" and fd.target and value not in self.picklists.labels:
            try:
                return self.picklists.id_for(fd.target, str(value))
            except KeyError:
                raise ValueError(f"{fd.name}: {value!r} is not a {fd.target} item") from None
        if fd.type == "CURRENCY":
            return float(value)
        return value

    def _log(
        self, name: str, key: str, kind: ChangeKind, diff: dict[str, dict[str, Any]], now: int
    ) -> Change:
        schema = SCHEMAS[name]
        rendered = {
            k: {"old": _truth(schema.field(k), v["old"]), "new": _truth(schema.field(k), v["new"])}
            for k, v in diff.items()
        }
        change = Change(
            seq=len(self._changes) + 1,
            time=format_utc(from_epoch_ms(now)),
            object=name,
            key=key,
            change=kind,
            fields=rendered,
        )
        self._changes.append(change)
        self.version += 1
        return change

    def _timeline_row(self, gen: random.Random, company_id: str, now: int) -> dict[str, Any]:
        created = now - gen.randrange(1, 100) * data.DAY_MS
        return {
            "Gsid": data.new_gsid(gen, SCHEMAS[TIMELINE].prefix),
            "Subject": "Check-in call",
            "Notes": "<p>Discussed adoption.</p>",
            "ActivityDate": created,
            "GsCompanyId": company_id,
            "AuthorId": gen.choice(self.user_ids),
            "CreatedDate": created,
            "LastModifiedDate": created,
        }


def _truth(fd: FieldDef | None, value: Any) -> Any:
    if fd is not None and fd.type in ("DATE", "DATETIME") and isinstance(value, int):
        return format_utc(from_epoch_ms(value))
    return value
