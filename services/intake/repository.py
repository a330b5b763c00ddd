"""All of intake's SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.models import Alert, Declaration, DeclarationProgress


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


class AlertRepository:
    """Department alerts."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, department: str, alert_id: str) -> bool:
        """True if the department already pushed this alert id."""
        stmt = select(Alert.id).where(Alert.department == department, Alert.alert_id == alert_id)
        return (await self.session.execute(stmt)).first() is not None
