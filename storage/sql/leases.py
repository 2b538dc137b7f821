"""Named leases: a role one process plays at a time, passed on when its holder stops
renewing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.sql.database import Repository
from storage.sql.times import utc_timestamp


class LeaseRepository(Repository):
    async def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        now = datetime.now(UTC)
        async with self.database.transaction() as tx:
            # One statement: the row's lock decides between holders racing for it.
            taken = await tx.fetch_one(
                """INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET holder=excluded.holder,
                     expires_at=excluded.expires_at
                   WHERE leases.holder = excluded.holder OR leases.expires_at < ?
                   RETURNING holder""",
                (
                    name,
                    holder,
                    utc_timestamp(now + timedelta(seconds=ttl_seconds)),
                    utc_timestamp(now),
                ),
            )
        return taken is not None

    async def release_lease(self, name: str, holder: str) -> None:
        await self.database.write("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))
