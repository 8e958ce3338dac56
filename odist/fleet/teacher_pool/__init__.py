"""The teacher pool: a shared, autoscaled Ray Serve deployment of teacher replicas, and its client.

Every student of a fleet sends its keyframes here. One ``TeacherReplica`` holds one teacher model and
labels the frames of many cameras together in dynamic batches; Serve adds replicas while requests
queue up and removes them when the pool is idle (``TeacherPoolConfig``). ``PooledTeacher`` is the
``Teacher`` a student uses: one request per frame, retried when a replica dies or does not answer in
time (labelling is idempotent), so a lost replica never loses a label.

How batches form. ``@serve.batch`` collects the requests that arrive within ``batch_wait_timeout_s``
of each other, but it closes a batch every window even while the teacher is still busy with the
previous one, which under load yields many small batches. So the Serve batch only *collects*: it hands
its requests to the replica's ``FrameBatcher`` and returns at once; the batcher runs one teacher forward
at a time (in a worker thread, so the replica keeps accepting requests) and each forward takes every
waiting request, up to ``max_batch_size``. Under load a batch is whatever queued during the previous
forward; when idle, whatever arrived within one wait window.

Typical use::

    handle = start_teacher_pool(TeacherPoolConfig(min_replicas=1, max_replicas=4, num_gpus=1),
                                "maskrcnn", config.teacher, config.classes, device="cuda")
    teacher = PooledTeacher(handle, config.classes)   # picklable: pass it into student actors
    result = teacher.label(keyframes)
"""


from odist.fleet.teacher_pool.client import PendingLabels, PooledTeacher, PoolTeacherFactory
from odist.fleet.teacher_pool.config import DEFAULT_POOL_NAME, DEPLOYMENT_NAME, TeacherPoolConfig
from odist.fleet.teacher_pool.lifecycle import (
    start_teacher_pool,
    stop_teacher_pool,
    teacher_pool_actor_names,
    teacher_pool_replicas,
)
from odist.fleet.teacher_pool.replica import BatchStats, FrameBatcher, LabelReply, TeacherReplica

__all__ = ["DEFAULT_POOL_NAME", "DEPLOYMENT_NAME", "BatchStats", "FrameBatcher", "LabelReply", "PendingLabels",
           "PoolTeacherFactory", "PooledTeacher", "TeacherPoolConfig", "TeacherReplica", "start_teacher_pool",
           "stop_teacher_pool", "teacher_pool_actor_names", "teacher_pool_replicas"]
