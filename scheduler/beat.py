"""The beat process's app: Taskforce's Celery app plus the maintenance schedule.

Started by ``taskforce beat`` (``celery -A scheduler.beat:app beat``). Only one beat
process may run per deployment. The schedule depends on the settings, so it joins the
app's configuration as a promise (``add_defaults`` with a callable), computed when beat
first reads its configuration, not when this module is imported.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab
from celery.signals import beat_init

from shared import names, telemetry
from shared.celery_app import app
from shared.settings import Settings, get_settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's schedule for ``settings`` (intervals in seconds).

    Cost rollups are cheap (one grouped INSERT .. ON CONFLICT over two days of calls), so
    every five minutes keeps dashboards fresh; memory cleanup runs nightly.
    """
    return {
        # Repairs after crashes and lost messages; its messages expire after one interval,
        # so a backlog of them never piles up behind a stopped fleet.
        "reconcile": {
            "task": names.RECONCILE,
            "schedule": settings.reconcile_interval_s,
            "options": {"expires": settings.reconcile_interval_s},
        },
        "rollup-costs": {"task": names.ROLLUP_COSTS, "schedule": 300.0},
        "clean-memory": {"task": names.CLEAN_MEMORY, "schedule": crontab(hour=3, minute=17)},
        # Session summaries off the request path; a pass is bounded by its batch size.
        "compact-sessions": {"task": names.COMPACT_SESSIONS,
                             "schedule": settings.session_compact_interval_s,
                             "options": {"expires": settings.session_compact_interval_s}},
    }


app.add_defaults(lambda: {"beat_schedule": beat_schedule(get_settings())})


@beat_init.connect
def _telemetry(**_: object) -> None:
    """Traces and metrics for beat's publishes (flushed at exit)."""
    telemetry.setup("beat")

__all__ = ["app", "beat_schedule"]
