"""The beat process's app: Taskforce's Celery app plus the maintenance schedule.

Started by ``taskforce beat`` (``celery -A scheduler.beat:app beat``). Only one beat
process may run per deployment.
"""

from __future__ import annotations

from celery.schedules import crontab

from shared import names
from shared.celery_app import app
from shared.settings import get_settings

# Cost rollups are cheap (one grouped INSERT .. ON CONFLICT over two days of calls), so
# every five minutes keeps dashboards fresh; memory cleanup runs nightly.
BEAT_SCHEDULE = {
    # Repairs after crashes and lost messages; its messages expire after one interval,
    # so a backlog of them never piles up behind a stopped fleet.
    "reconcile": {
        "task": names.RECONCILE,
        "schedule": get_settings().reconcile_interval_s,
        "options": {"expires": get_settings().reconcile_interval_s},
    },
    "rollup-costs": {"task": names.ROLLUP_COSTS, "schedule": 300.0},
    "clean-memory": {"task": names.CLEAN_MEMORY, "schedule": crontab(hour=3, minute=17)},
}

app.conf.beat_schedule = BEAT_SCHEDULE

__all__ = ["app", "BEAT_SCHEDULE"]
