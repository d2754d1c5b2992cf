"""How `firewarden up` and `firewarden ingest` wire an ingest process together."""

from __future__ import annotations

from pathlib import Path

from devices import Channel
from firewarden.database import open_database
from firewarden.runtime import Ingest
from firewarden.settings import MqttEndpoint, Settings


async def test_bulk_work_gives_way_to_alerts_but_the_event_lane_never_waits(tmp_path: Path
                                                                             ) -> None:
    settings = Settings(DATA_DIR=tmp_path, DATABASE_URL=None, _env_file=None)  # type: ignore[call-arg]
    async with open_database(settings.database_url) as (_engine, sessions):
        ingest = Ingest(settings, sessions, MqttEndpoint("127.0.0.1", 1883, False, None, None))
        lanes = {listener.lane: listener._give_way for listener in ingest.listeners}
        assert lanes[Channel.TELEMETRY] == ingest.recorder.give_way
        assert lanes[Channel.EVENT] is None  # a fire alarm never waits for another
        for waits in (ingest.writer.give_way_to, ingest.status.give_way_to,
                      ingest.pending.give_way_to):
            assert waits is not None and waits() is False
            ingest.recorder.submit([])  # something queued for the recorder
            assert waits() is True
            await ingest.recorder.flush_once()
