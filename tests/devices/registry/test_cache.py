"""The registry cache stays fresh across processes sharing one database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, insert, select, update

from devices.kinds import DeviceKind
from devices.registry import store
from devices.registry.cache import RegistryCache
from devices.registry.schemas import DeviceCreate, SiteCreate, SiteUpdate
from devices.registry.tables import DeviceRow, RegistryChangeRow
from firewarden.database import open_database, utcnow
from simulators import FleetSimulation, SimConfig, write_registry_csv


async def test_changes_by_another_process_arrive(database_url: str, tmp_path: Path) -> None:
    async with open_database(database_url) as (_engine, sessions):
        cache = RegistryCache(sessions, poll_interval_s=0.2)
        await cache.load()
        assert len(cache) == 0
        stop = asyncio.Event()
        follower = asyncio.create_task(cache.run(stop))
        try:
            fleet = tmp_path / "fleet.csv"
            write_registry_csv(FleetSimulation(SimConfig(smoke=5, electrical=3,
                                                         controlrooms=1)).fleet, fleet)
            env = {**os.environ, "FIREWARDEN_DATABASE_URL": database_url}
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "firewarden.cli", "devices", "import",
                                 str(fleet)], env=env, capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr
            deadline = time.monotonic() + 5
            while len(cache) < 9 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert len(cache) == 9
        finally:
            stop.set()
            await follower


async def test_device_and_site_changes_and_late_commits(database_url: str) -> None:
    async with open_database(database_url) as (_engine, sessions):
        async with sessions() as session:
            await store.create_site(session, SiteCreate(id="S1", name="n", jurisdiction="东"))
            await store.create_device(session, DeviceCreate(id="EM1", kind=DeviceKind.ELECTRICAL,
                                                            site_id="S1"))
            await session.commit()
        here, there = RegistryCache(sessions), RegistryCache(sessions)
        await here.load()
        await there.load()
        info = there.get("EM1")
        assert info is not None and info.profile.residual_current_ma == 300

        async with sessions() as session:  # a site-wide override changes every device there
            await store.update_site(session, "S1", SiteUpdate(
                jurisdiction="西", profiles={DeviceKind.ELECTRICAL: {  # type: ignore[dict-item]
                    "residual_current_ma": 450}}))
            await session.commit()
        assert await there.refresh() >= 1
        info = there.get("EM1")
        assert info is not None and info.jurisdiction == "西"
        assert info.profile.residual_current_ma == 450

        # A change whose id is lower than one already seen (it committed late) still applies.
        async with sessions() as session:
            newest = await session.scalar(select(func.max(RegistryChangeRow.id)))
            assert newest is not None
            await session.execute(insert(RegistryChangeRow).values(  # commits first...
                id=newest + 2, site_id="S1", changed_at=utcnow()))
            await session.commit()
        await there.refresh()
        async with sessions() as session:  # ...then the transaction holding the lower id
            await session.execute(update(DeviceRow).values(state="decommissioned"))
            await session.execute(insert(RegistryChangeRow).values(
                id=newest + 1, device_id="EM1", changed_at=utcnow()))
            await session.commit()
        await there.refresh()
        assert there.get("EM1").state == "decommissioned"  # type: ignore[union-attr]
        assert await there.refresh() == 0  # applied once


async def test_lookup_is_shared_and_maintenance_expires() -> None:
    from devices.profiles import DEFAULT_PROFILES, effective_profile
    from devices.registry.cache import DeviceInfo

    a = effective_profile(DeviceKind.SMOKE, None, {})
    b = effective_profile(DeviceKind.SMOKE, {}, None)
    assert a is b and a == DEFAULT_PROFILES[DeviceKind.SMOKE]
    info = DeviceInfo("D", DeviceKind.SMOKE, "S", "j", "maintenance", 1000, a, 2)
    assert info.state_at(999) == "maintenance" and info.state_at(1000) == "active"
