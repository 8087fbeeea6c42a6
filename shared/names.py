"""Every task name, queue name and Redis key prefix Taskforce uses, in one place.

Work crosses process boundaries by these names only: the gateway sends ``PLAN_GOAL``
without importing the worker, and beat schedules maintenance jobs by name.
"""

# Celery task names.
PLAN_GOAL = "taskforce.plan_goal"
RUN_STEP = "taskforce.run_step"
REACT_TURN = "taskforce.react_turn"
CLEAN_MEMORY = "taskforce.maintenance.clean_memory"
ROLLUP_COSTS = "taskforce.maintenance.rollup_costs"
RECONCILE = "taskforce.maintenance.reconcile"
COMPACT_SESSIONS = "taskforce.memory.compact_sessions"
NOOP = "taskforce.bench.noop"

# Queues. Planning and steps share one queue by default so any worker can take either;
# maintenance jobs have their own so a backlog of steps never delays them.
STEPS_QUEUE = "taskforce.steps"
MAINTENANCE_QUEUE = "taskforce.maintenance"
BENCH_QUEUE = "taskforce.bench"

# Modules that define Celery tasks, imported by worker processes (by name only).
TASK_MODULES = ("worker.tasks", "scheduler.jobs")

# Prefix for every Redis key Taskforce itself writes (beyond Celery's own).
REDIS_PREFIX = "taskforce:"

# Fleet-wide LLM rate limits (``shared.llm.ratelimit``): one key per (provider, model,
# dimension), e.g. ``taskforce:ratelimit:{openai:gpt-4o}:requests``.
RATE_LIMIT_PREFIX = f"{REDIS_PREFIX}ratelimit:"

# Marker put on everything a simulated component produces.
SIMULATED_MARK = "[simulated]"


# Per-tenant goal submission rate (``shared.quotas``): one key per tenant, e.g.
# ``taskforce:quota:{<tenant id>}:goals``, holding the GCRA's theoretical arrival time.
QUOTA_PREFIX = f"{REDIS_PREFIX}quota:"
