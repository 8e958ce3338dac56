"""Where Ray is with a camera's actor: placed and answering, being started, waiting for resources, or gone.

Ray's ``PENDING_CREATION`` covers two cases a user tells apart: the cluster has no room for the actor
yet (it waits for a CPU or GPU share), and the room is there but its worker process is still starting
(importing torch and odist takes a while on a busy machine). ``not_placed_note`` says which.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ray

from odist.fleet.runtime import worker_options

# Ray's actor states before it has a process running the camera.
NOT_PLACED = frozenset({"PENDING_CREATION", "DEPENDENCIES_UNREADY"})
STARTING_NOTE = "Ray is starting its worker process"


def actor_states(actors: Iterable[Any]) -> dict[str, str | None]:
    """Ray's state (ALIVE, PENDING_CREATION, RESTARTING, DEAD, ...) of each actor by its hex id, in one read
    of the GCS; None where it cannot be read (a private API: a silent camera then reads as restarting)."""
    ids = [actor._actor_id.hex() for actor in actors]
    if not ids:
        return {}
    try:
        from ray._private.state import actors as actor_table

        table = actor_table(actor_id=ids[0]) if len(ids) == 1 else actor_table()
        if len(ids) == 1:
            table = {ids[0]: table}
        return {actor_id: (table.get(actor_id) or {}).get("State") for actor_id in ids}
    except Exception:
        return dict.fromkeys(ids)


def state_of(states: dict[str, str | None], actor: Any) -> str | None:
    return states.get(actor._actor_id.hex())


def asks(student_gpus: float, student_cpus: float | None) -> dict[str, float]:
    """What one camera asks of Ray, by resource name (CPU, GPU), without the zero asks."""
    options = worker_options(student_gpus, student_cpus)
    return {name: options[key] for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")) if options[key]}


def not_placed_note(ask: dict[str, float]) -> tuple[bool, str]:
    """(whether the cluster has room for the ask now, the note the status table shows, 60 characters at most).

    With room, Ray is starting the actor's process; without, it waits for the resources it asks."""
    try:
        free = ray.available_resources()
    except Exception:  # the status must not fail for a display
        free = {}
    if all(free.get(name, 0.0) + 1e-9 >= amount for name, amount in ask.items()):
        return True, STARTING_NOTE
    need = " and ".join(f"{amount:g} {name}" for name, amount in ask.items())
    return False, f"waits for {need}; --student-cpus 0.5 packs more per node"
