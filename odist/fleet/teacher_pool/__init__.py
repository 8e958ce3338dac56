"""The teacher pool: a shared, autoscaled Ray Serve deployment of teacher replicas, and its client.

Every student of a fleet sends its keyframes here. One ``TeacherReplica`` holds one teacher model and
labels the frames of many cameras together in dynamic batches; Serve adds replicas while requests
queue up and removes them when the pool is idle (``TeacherPoolConfig``). ``PooledTeacher`` is the
``Teacher`` a student uses: one request per frame, retried when a replica dies or does not answer in
time (labelling is idempotent), so a lost replica never loses a label.

How batches form. Each request goes straight to the replica's ``FrameBatcher``, which runs one teacher
forward at a time (in a worker thread, so the replica keeps accepting requests); each forward takes every
waiting request, up to ``max_batch_size``. Students wait for a label before sending their next keyframe,
so the batcher expects the callers of its last round back (the last batch and whoever queued during it)
and waits up to ``batch_wait_timeout_s`` for them before a forward (``batching="adaptive"``, the
default); a lone caller is expected alone, and its frame goes at once. ``batching="window"`` puts Serve's
``@serve.batch`` in front instead, which collects every ``batch_wait_timeout_s`` window first, so even a
lone request waits one window (``bench/teacher_pool_load.py`` measures both against a plain actor pool).

``implementation: actors`` runs the same replicas as a fixed set of plain Ray actors instead
(``odist.fleet.teacher_pool.actor_pool``): no Serve router between students and replicas, no autoscaling.

Typical use::

    handle = start_teacher_pool(TeacherPoolConfig(min_replicas=1, max_replicas=4, num_gpus=1),
                                "maskrcnn", config.teacher, config.classes, device="cuda")
    teacher = PooledTeacher(handle, config.classes)   # picklable: pass it into student actors
    result = teacher.label(keyframes)
"""


from odist.fleet.teacher_pool.actor_pool import ActorPoolHandle, actor_pool_names, start_actor_pool, stop_actor_pool
from odist.fleet.teacher_pool.client import PendingLabels, PooledTeacher, PoolTeacherFactory
from odist.fleet.teacher_pool.config import DEFAULT_POOL_NAME, DEPLOYMENT_NAME, TeacherPoolConfig
from odist.fleet.teacher_pool.lifecycle import (
    start_teacher_pool,
    stop_teacher_pool,
    teacher_pool_actor_names,
    teacher_pool_replicas,
)
from odist.fleet.teacher_pool.replica import BatchStats, FrameBatcher, LabellingReplica, LabelReply, TeacherReplica

__all__ = ["DEFAULT_POOL_NAME", "DEPLOYMENT_NAME", "ActorPoolHandle", "BatchStats", "FrameBatcher", "LabelReply",
           "LabellingReplica", "PendingLabels", "PoolTeacherFactory", "PooledTeacher", "TeacherPoolConfig",
           "TeacherReplica", "actor_pool_names", "start_actor_pool", "start_teacher_pool", "stop_actor_pool",
           "stop_teacher_pool", "teacher_pool_actor_names", "teacher_pool_replicas"]
