"""What waiting out a dead writer's lease does, without the wait: its newest generation aged past its ttl."""

from __future__ import annotations

import json
import time

from odist.storage.layout import StreamArea
from odist.storage.lease import FOLDER


def expire_lease(area: StreamArea) -> None:
    """Move the last renewal of ``area``'s lease (a killed writer's) back by more than its ``ttl_s``."""
    keys = sorted(area.store.list(area.key(FOLDER)))
    assert keys, f"stream {area.stream_id} holds no lease"
    document = json.loads(area.store.get(keys[-1]))
    document["renewed_unix"] = time.time() - float(document["ttl_s"]) - 1.0
    area.store.put(keys[-1], json.dumps(document).encode())
