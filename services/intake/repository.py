"""All of intake's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.intake.models import (
    Alert,
    BulkJob,
    BulkRejection,
    CallbackDelivery,
    Declaration,
    DeclarationProgress,
)
from shared.db import dialect_of, insert_ignoring_conflicts


class DeclarationRepository:
    """Declarations and their progress."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_idempotency_key(self, client_id: str, key: str) -> Declaration | None:
        """Return the declaration a client filed under an Idempotency-Key."""
        stmt = select(Declaration).where(
            Declaration.client_id == client_id, Declaration.idempotency_key == key
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_receipt(self, receipt_no: str) -> Declaration | None:
        """Return a declaration by receipt number."""
        stmt = select(Declaration).where(Declaration.receipt_no == receipt_no)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_receipts(self, receipts: Sequence[str]) -> list[Declaration]:
        """Return the declarations with these receipt numbers."""
        if not receipts:
            return []
        stmt = select(Declaration).where(Declaration.receipt_no.in_(receipts))
        return list((await self.session.execute(stmt)).scalars())

    async def by_case(self, case_id: uuid.UUID) -> list[Declaration]:
        """Return the declarations that became this case."""
        stmt = select(Declaration).where(Declaration.case_id == case_id)
        return list((await self.session.execute(stmt)).scalars())

    async def history(self, declaration_id: uuid.UUID) -> list[DeclarationProgress]:
        """Return a declaration's progress steps, oldest first."""
        stmt = (
            select(DeclarationProgress)
            .where(DeclarationProgress.declaration_id == declaration_id)
            .order_by(DeclarationProgress.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def count_steps(self, declaration_id: uuid.UUID) -> int:
        """Return how many progress steps a declaration has (pending ones included)."""
        stmt = select(func.count()).where(DeclarationProgress.declaration_id == declaration_id)
        return int((await self.session.execute(stmt)).scalar_one())


class AlertRepository:
    """Department alerts."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, department: str, alert_id: str) -> bool:
        """True if the department already pushed this alert id."""
        stmt = select(Alert.id).where(Alert.department == department, Alert.alert_id == alert_id)
        return (await self.session.execute(stmt)).first() is not None

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert the rows whose (department, alert_id) is new; return the alert ids inserted.

        ON CONFLICT DO NOTHING closes the race with a concurrent push of the same alert:
        whichever commits second simply gets nothing back for that id.
        """
        if not rows:
            return set()
        table = Alert.__table__
        assert isinstance(table, Table)
        stmt = insert_ignoring_conflicts(table, dialect_of(self.session)).returning(
            table.c.alert_id
        )
        result = await self.session.execute(stmt, list(rows))
        return {str(v) for v in result.scalars()}


class OutboxRepository:
    """Many-row writes to the outbox table (single events go through Outbox.add)."""

    def __init__(self, session: AsyncSession, table: Table) -> None:
        self.session = session
        self.table = table

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert outbox rows in one executemany."""
        if rows:
            await self.session.execute(self.table.insert(), list(rows))


class BulkJobRepository:
    """Bulk jobs, their leases and their rejections."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, job_id: uuid.UUID) -> BulkJob | None:
        """Return a job."""
        return await self.session.get(BulkJob, job_id)

    async def lock(self, job_id: uuid.UUID) -> BulkJob | None:
        """Return a job, locked until the transaction ends, with fresh column values."""
        stmt = (
            select(BulkJob)
            .where(BulkJob.id == job_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claim(
        self, job_id: uuid.UUID, *, owner: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Take a job whose lease is free or expired; True if this owner now holds it."""
        stmt = (
            update(BulkJob)
            .where(
                BulkJob.id == job_id,
                BulkJob.status.in_(("queued", "running")),
                or_(
                    BulkJob.lease_owner == owner,
                    BulkJob.lease_expires_at.is_(None),
                    BulkJob.lease_expires_at <= now,
                ),
            )
            .values(lease_owner=owner, lease_expires_at=lease_until, updated_at=now)
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def orphaned(self, now: datetime, limit: int = 100) -> list[uuid.UUID]:
        """Return unfinished jobs nobody holds a live lease on."""
        stmt = (
            select(BulkJob.id)
            .where(
                BulkJob.status.in_(("queued", "running")),
                or_(BulkJob.lease_expires_at.is_(None), BulkJob.lease_expires_at <= now),
            )
            .order_by(BulkJob.created_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def unfinished_ids(self) -> set[uuid.UUID]:
        """Return the ids of every queued or running job."""
        stmt = select(BulkJob.id).where(BulkJob.status.in_(("queued", "running")))
        return set((await self.session.execute(stmt)).scalars())

    async def release(self, owner: str, now: datetime) -> None:
        """Give up this owner's leases (graceful shutdown) so a restart resumes at once."""
        await self.session.execute(
            update(BulkJob)
            .where(BulkJob.lease_owner == owner, BulkJob.status.in_(("queued", "running")))
            .values(lease_expires_at=now, updated_at=now)
        )

    async def add_rejections(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rejection reasons in one executemany."""
        if rows:
            table = BulkRejection.__table__
            assert isinstance(table, Table)
            await self.session.execute(table.insert(), list(rows))

    async def rejections_page(
        self, job_id: uuid.UUID, *, after_id: int, limit: int
    ) -> list[BulkRejection]:
        """Return the next page of a job's rejections in file order (keyset paging)."""
        stmt = (
            select(BulkRejection)
            .where(BulkRejection.job_id == job_id, BulkRejection.id > after_id)
            .order_by(BulkRejection.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())


class CallbackRepository:
    """Progress callbacks waiting to be delivered."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_due(
        self, *, now: datetime, limit: int, lease_until: datetime
    ) -> list[CallbackDelivery]:
        """Return due deliveries, each the oldest pending one of its declaration, leased.

        The lease (next_attempt_at pushed ahead) keeps a second worker off a row while this
        one's HTTP call is in flight, without holding a transaction open across the call.
        """
        earlier = aliased(CallbackDelivery)
        stmt = (
            select(CallbackDelivery)
            .where(
                CallbackDelivery.delivered_at.is_(None),
                CallbackDelivery.next_attempt_at <= now,
                # Changes of one declaration arrive in order: a later one waits for earlier ones.
                ~exists().where(
                    and_(
                        earlier.declaration_id == CallbackDelivery.declaration_id,
                        earlier.delivered_at.is_(None),
                        earlier.id < CallbackDelivery.id,
                    )
                ),
            )
            .order_by(CallbackDelivery.next_attempt_at, CallbackDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=CallbackDelivery)
        )
        rows = list((await self.session.execute(stmt)).scalars())
        for row in rows:
            row.next_attempt_at = lease_until
        return rows

    async def get(self, delivery_pk: int) -> CallbackDelivery | None:
        """Return a delivery row."""
        return await self.session.get(CallbackDelivery, delivery_pk)
