"""The domain model: sites, households, residents, actions, engagements, visits, agenda, and sync bookkeeping.

Everything a device syncs has a client-made UUID, a server-side change sequence (`seq`) and a tombstone
(`deleted`). Personal data lives in `Resident` only (and free text in `Visit.note` / `Household.notes`).
"""
import uuid
from datetime import date, datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no offset of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


ROLES = ("gardien", "staff", "head_office", "admin")
FIELD_ROLES = ("gardien", "staff")
REVIEW_ROLES = ("head_office", "admin")

ENGAGEMENT_ROLES = ("contributor", "volunteer", "beneficiary")
ENGAGEMENT_STATUSES = ("active", "paused", "ended")
VISIT_OUTCOMES = ("absent", "refused", "talked")
EVENT_KINDS = ("atelier", "accompagnement", "sortie", "reunion", "permanence")
EVENT_STATUSES = ("scheduled", "cancelled")
HEADCOUNT_CATEGORIES = ("adults", "children", "seniors")
VISIT_NEEDS = (
    "isolement", "mobilite", "courses", "numerique", "emploi", "budget", "logement", "lien_social", "autre",
)


user_sites = db.Table(
    "user_sites",
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("site_id", sa.Uuid, sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)

event_sites = db.Table(
    "event_sites",
    sa.Column("event_id", sa.Uuid, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("site_id", sa.Uuid, sa.ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)


class Synced:
    """Columns shared by every row a device syncs."""

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, index=True)
    deleted: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
    # The record's pull change as JSON text, valid while wire_seq == seq (server/sync_store.py): a pull splices
    # it unparsed. Written by the sync push; any other writer bumps seq, so a stale text is never sent.
    wire: Mapped[str | None] = mapped_column(sa.Text, deferred=True)
    wire_seq: Mapped[int | None] = mapped_column(sa.BigInteger, deferred=True)


class SyncState(db.Model):
    """A single row holding the change sequence; updating it locks it until commit, so seq order = commit order."""

    __tablename__ = "sync_state"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)


class Programme(db.Model):
    __tablename__ = "programmes"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    goal: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    baseline: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    baseline_on: Mapped[date | None] = mapped_column(sa.Date)


class Site(Synced, db.Model):
    """A résidence or quartier."""

    __tablename__ = "sites"
    code: Mapped[str] = mapped_column(sa.String(40), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    commune: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    territory: Mapped[str] = mapped_column(sa.String(120), nullable=False, default="")


class User(db.Model):
    """Staff: gardien, proximity staff, head office, admin."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(sa.String(254), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    role: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    # Every token issued before this instant is refused: deactivation and "log out everywhere".
    tokens_valid_after: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    sites: Mapped[list[Site]] = relationship(secondary=user_sites, lazy="selectin", order_by="Site.name")

    __table_args__ = (sa.CheckConstraint(sa.text("role in ('gardien','staff','head_office','admin')"), name="role"),)

    @property
    def site_ids(self) -> set[uuid.UUID]:
        return {s.id for s in self.sites if not s.deleted}

    @property
    def sees_all_sites(self) -> bool:
        return self.role in REVIEW_ROLES


class RevokedToken(db.Model):
    """A token revoked before its expiry (logout). Kept in the database so that it survives a restart."""

    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class Action(Synced, db.Model):
    """A community project: portage de pain et d'eau, laverie solidaire, troc de vêtements..."""

    __tablename__ = "actions"
    code: Mapped[str] = mapped_column(sa.String(60), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    # None: open on every site of the programme.
    site_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), index=True)


class Household(Synced, db.Model):
    """A logement: where a door-to-door visit knocks."""

    __tablename__ = "households"
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), nullable=False)
    building: Mapped[str] = mapped_column(sa.String(40), nullable=False, default="")
    staircase: Mapped[str] = mapped_column(sa.String(20), nullable=False, default="")
    floor: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="")
    door: Mapped[str] = mapped_column(sa.String(20), nullable=False, default="")
    landlord_ref: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    notes: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    field_versions: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)

    __table_args__ = (
        sa.UniqueConstraint("site_id", "landlord_ref"),
        sa.Index("ix_households_site_seq", "site_id", "seq"),
    )


class Resident(Synced, db.Model):
    """A person in a household. The only table that holds names and contact details."""

    __tablename__ = "residents"
    household_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("households.id"), nullable=False,
                                                    index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), nullable=False)
    first_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    name_key: Mapped[str] = mapped_column(sa.String(220), nullable=False)
    phone: Mapped[str] = mapped_column(sa.String(30), nullable=False, default="")
    email: Mapped[str] = mapped_column(sa.String(254), nullable=False, default="")
    consent_contact: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    consent_image: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    consent_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Suspected duplicate waiting for review: points at the resident it probably is.
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True)
    # Set on the tombstone of a merged resident: every reference now points there.
    merged_into: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    field_versions: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)
    # The pull change without the fields a gardien may not see (phone, email): sync.store.HIDDEN_FIELDS.
    wire_restricted: Mapped[str | None] = mapped_column(sa.Text, deferred=True)

    __table_args__ = (
        sa.Index("ix_residents_site_seq", "site_id", "seq"),
        sa.Index("ix_residents_household_key", "household_id", "name_key"),
        # Who an engagement counts as, read from the index alone by the dashboard (server/office.py).
        sa.Index("ix_residents_person", "id", "deleted", "duplicate_of"),
    )


class Engagement(Synced, db.Model):
    """A resident taking part in an action, as contributor, volunteer or beneficiary."""

    __tablename__ = "engagements"
    resident_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("residents.id"), nullable=False,
                                                   index=True)
    action_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("actions.id"), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), nullable=False)
    role: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="active")
    started_on: Mapped[date] = mapped_column(sa.Date, nullable=False)
    ended_on: Mapped[date | None] = mapped_column(sa.Date)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    field_versions: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)

    __table_args__ = (sa.Index("ix_engagements_site_seq", "site_id", "seq"),)


class Visit(Synced, db.Model):
    """A door-to-door visit (porte-à-porte): an append-only fact."""

    __tablename__ = "visits"
    household_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("households.id"), nullable=False,
                                                    index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), nullable=False)
    # The person the staff member talked to, when there was one (re-pointed by a duplicate merge).
    resident_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("residents.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    # The device's capture time: data, never the judge of anything. received_at is the server's.
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    clock_suspect: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    outcome: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    interests: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    needs: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    follow_up: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    consent_recontact: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    note: Mapped[str] = mapped_column(sa.String(500), nullable=False, default="")

    # ix_visits_week: the dashboard's visits per week and outcome, read from the index alone.
    __table_args__ = (sa.Index("ix_visits_site_seq", "site_id", "seq"),
                      sa.Index("ix_visits_week", "visited_at", "deleted", "outcome", "site_id"))


class Event(Synced, db.Model):
    """An agenda entry: atelier, journée d'accompagnement, sortie, réunion."""

    __tablename__ = "events"
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    place: Mapped[str] = mapped_column(sa.String(200), nullable=False, default="")
    status: Mapped[str] = mapped_column(sa.String(12), nullable=False, default="scheduled")
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    sites: Mapped[list[Site]] = relationship(secondary=event_sites, lazy="selectin", order_by="Site.name")

    @property
    def site_ids(self) -> list[uuid.UUID]:
        return [s.id for s in self.sites]


class Attendance(Synced, db.Model):
    """A named check-in of a resident at an event: an append-only fact, once per resident and event."""

    __tablename__ = "attendances"
    event_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("events.id"), nullable=False)
    resident_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("residents.id"), nullable=False,
                                                   index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    clock_suspect: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)

    __table_args__ = (sa.UniqueConstraint("event_id", "resident_id"),
                      sa.Index("ix_attendances_site_seq", "site_id", "seq"))


class HeadCount(Synced, db.Model):
    """A head count by category at a large event (sortie pêche with 200 people): each count is one fact."""

    __tablename__ = "head_counts"
    event_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("events.id"), nullable=False, index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    category: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    clock_suspect: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)

    __table_args__ = (sa.Index("ix_head_counts_site_seq", "site_id", "seq"),)


class Device(db.Model):
    """A field device (one browser profile, one user). Its mutations are numbered 1, 2, 3..."""

    __tablename__ = "devices"
    client_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"),
                                               nullable=False, index=True)
    last_applied: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    app_version: Mapped[str] = mapped_column(sa.String(40), nullable=False, default="")
    pending_reported: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_pull_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class MutationRun(db.Model):
    """The mutation log, one row per push that decided mutations: the run of consecutive numbers it decided
    (first_n..last_n) and, for each in order, [op, status, sha256 of its body] (the replay check and answer). One
    row rather than one per mutation: a push of 500 writes one row, checked once against its device."""

    __tablename__ = "mutation_runs"
    client_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("devices.client_id", ondelete="CASCADE"),
                                                 primary_key=True)
    # The key ends with last_n: a replay looks for the runs with last_n >= its lowest n, near the device's end.
    last_n: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    first_n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    entries: Mapped[list] = mapped_column(sa.JSON, nullable=False)  # [[op, status, body_hash]] for first_n..last_n
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)


class PushReceipt(db.Model):
    """A push request that applied mutations, known by the sha256 of its exact bytes: the same bytes again (a
    phone resending after a lost answer) are answered from the log without being decided again (PROTOCOL.md)."""

    __tablename__ = "push_receipts"
    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("devices.client_id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    first_n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    last_n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)


class Rejection(db.Model):
    """A mutation refused by validation or authorization, for head office to fix or dismiss."""

    __tablename__ = "rejections"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    client_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False)
    n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    site_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"))
    op: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    code: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    reason: Mapped[dict] = mapped_column(sa.JSON, nullable=False)
    # Kept so a person can fix it; dropped when resolved (it may hold personal data).
    args: Mapped[dict | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="open")  # open | fixed | dismissed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("client_id", "n"),)


class Conflict(db.Model):
    """A value that lost a field-level merge: kept for head office, never dropped silently."""

    __tablename__ = "conflicts"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    entity: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    entity_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False, index=True)
    site_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"))
    field: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    kept_value = mapped_column(sa.JSON)
    kept_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    kept_seq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    lost_value = mapped_column(sa.JSON)
    lost_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    lost_client_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    lost_n: Mapped[int | None] = mapped_column(sa.BigInteger)
    lost_base_seq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="open")  # open | resolved
    resolution = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DuplicateSuspicion(db.Model):
    """Two residents that are probably one person (same household, same normalised name)."""

    __tablename__ = "duplicate_suspicions"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    resident_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("residents.id"), nullable=False,
                                                   index=True)
    candidate_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("residents.id"), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id"), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="pending")  # pending|merged|distinct
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditLog(db.Model):
    """Who did what to personal data or accounts: exports, merges, user changes."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(120), nullable=False, default="")
    details: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)


PUSH_DELIVERY_KINDS = ("reminder", "cancelled")
# pending -> sending (claimed by one worker) -> sent | failed | dropped; a 429 puts it back to pending.
PUSH_DELIVERY_STATES = ("pending", "sending", "sent", "failed", "dropped")


class PushSubscription(db.Model):
    """A resident's browser subscribed to a site's agenda reminders (Web Push), with the consent behind it.

    Nothing here names a person. On withdrawal the endpoint and keys are erased; the consent record stays.
    """

    __tablename__ = "push_subscriptions"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                                               nullable=False, index=True)
    endpoint: Mapped[str | None] = mapped_column(sa.String(1000))
    p256dh: Mapped[str | None] = mapped_column(sa.String(200))
    auth: Mapped[str | None] = mapped_column(sa.String(100))
    kinds: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    consent_text_version: Mapped[str] = mapped_column(sa.String(40), nullable=False)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # sha256 of the one-tap unsubscribe token (the token itself is derived, never stored).
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    failures: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_failure_status: Mapped[int | None] = mapped_column(sa.Integer)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set only when the resident subscribed through a per-resident link shown by staff (PushLink), so that
    # erasing that resident deletes it; a subscription from the site's public QR stays anonymous.
    resident_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, sa.ForeignKey("residents.id", ondelete="SET NULL"), index=True)

    __table_args__ = (sa.UniqueConstraint("site_id", "endpoint"),)


class PushLink(db.Model):
    """A single-use, short-lived token that ties the next subscription of a browser to one resident.

    Staff show it as a QR code during a visit; only its sha256 is kept. See docs/privacy.md.
    """

    __tablename__ = "push_links"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    resident_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("residents.id", ondelete="CASCADE"),
                                                   nullable=False, index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("sites.id", ondelete="CASCADE"),
                                               nullable=False)
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PushDelivery(db.Model):
    """One notification to one subscription: a reminder (event x offset) or a cancellation notice.

    The unique key makes planning idempotent; the claim columns make sending exactly once across workers.
    """

    __tablename__ = "push_deliveries"
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("push_subscriptions.id", ondelete="CASCADE"), nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("events.id", ondelete="CASCADE"),
                                                nullable=False, index=True)
    kind: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="reminder")
    offset_minutes: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    state: Mapped[str] = mapped_column(sa.String(10), nullable=False, default="pending")
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_status: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id", "kind", "offset_minutes"),
        sa.Index("ix_push_deliveries_state_due", "state", "due_at"),
        sa.CheckConstraint(sa.text("state in ('pending','sending','sent','failed','dropped')"), name="state"),
        # 'moved': the event's time changed after a reminder went out (offset_minutes = the move's number).
        sa.CheckConstraint(sa.text("kind in ('reminder','cancelled','moved')"), name="kind"),
    )


class PushAlert(db.Model):
    """A push service refused our VAPID credentials (401/403): head office must look. No personal data."""

    __tablename__ = "push_alerts"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    push_service: Mapped[str] = mapped_column(sa.String(200), nullable=False)  # host only
    status: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    count: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
