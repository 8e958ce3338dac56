"""The teacher pool's settings (the config tree's ``pool`` section) and its names in Ray Serve."""

from odist.run_config import PoolConfig

DEFAULT_POOL_NAME = "odist-teacher"
DEPLOYMENT_NAME = "TeacherReplica"
REPLICA_ACTOR_PREFIX = "SERVE_REPLICA::"
SERVE_NAMESPACE = "serve"

TeacherPoolConfig = PoolConfig
