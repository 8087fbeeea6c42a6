"""The console's pages: the goal list with filters, a goal (DAG, timeline, steps, LLM
calls, cancel), a batch, and costs. Server-rendered with Jinja2 (autoescaped); the goal
page's script (``static/goal.js``) draws the DAG and the timeline and follows the goal's
event stream. Every page needs the same API key as the API (``goals:read``); without
one it sends the browser to the login page.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api_gateway.console import session
from shared import batches, goal_queries, goals
from shared.auth import GOALS_READ, KEYS_ADMIN, Principal
from shared.celery_app import step_task_id
from shared.domain.models import Episode, GoalStatus
from shared.errors import RequestError
from shared.settings import get_settings

HERE = Path(__file__).parent
PRETTY_MAX_CHARS = 20_000  # characters of a step's arguments or output shown on a page
templates = Jinja2Templates(directory=HERE / "templates")


def _pretty(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= PRETTY_MAX_CHARS else text[:PRETTY_MAX_CHARS] + "\n… (cut)"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


templates.env.filters.update(pretty=_pretty, when=_when,
                             usd=lambda v: f"${float(v or 0):.6f}")


def mount(app: FastAPI) -> None:
    """Serve the console's pages under ``/console`` and its files under
    ``/console/static``."""
    app.mount("/console/static", StaticFiles(directory=HERE / "static"),
              name="console-static")
    app.include_router(build_router())


def page(request: Request, template: str, context: dict[str, Any],
         status_code: int = 200) -> HTMLResponse:
    """A rendered page with the console's security headers (CSP and friends)."""
    response = templates.TemplateResponse(request, template, context,
                                          status_code=status_code)
    response.headers.update(session.SECURITY_HEADERS)
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?{urlencode({'next': target})}", status_code=303)


def _viewer(request: Request) -> Principal | Response:
    """The reader of a page, or the response to send instead (login, 403)."""
    principal = session.principal_of(request)
    if principal is None:
        return _login_redirect(request)
    if GOALS_READ not in principal.scopes:
        return page(request, "message.html", {"title": "Not allowed", "message":
                    "This API key lacks the scope goals:read."}, status_code=403)
    return principal


def _failure(request: Request, exc: RequestError) -> HTMLResponse:
    return page(request, "message.html", {"title": "Not found" if exc.http_status == 404
                                          else "Invalid request", "message": exc.detail()},
                status_code=exc.http_status)


def _list_query(request: Request) -> tuple[goal_queries.ListQuery, dict[str, Any]]:
    """Filters from the list form (blank fields ignored), and the values to show back."""
    params = request.query_params
    form = {name: (params.get(name) or "").strip() for name in
            ("created_after", "created_before", "metadata", "provider", "model", "batch")}
    statuses = [s for s in params.getlist("status") if s in GoalStatus.__members__.values()]
    try:
        after = datetime.fromisoformat(form["created_after"]) if form["created_after"] else None
        before = (datetime.fromisoformat(form["created_before"]) if form["created_before"]
                  else None)
        batch = uuid.UUID(form["batch"]) if form["batch"] else None
    except ValueError:
        raise RequestError("dates read YYYY-MM-DDTHH:MM, a batch is a UUID") from None
    metadata = tuple(p.strip() for p in form["metadata"].split(",") if p.strip())
    query = goal_queries.ListQuery(
        statuses=tuple(statuses), created_after=after, created_before=before,
        metadata=metadata, provider=form["provider"] or None, model=form["model"] or None,
        batch_id=batch)
    return query, {**form, "status": statuses}


def build_router() -> APIRouter:
    """The console's routes (left out of the OpenAPI schema: they answer HTML)."""
    router = APIRouter(prefix="/console", include_in_schema=False)

    @router.get("/login")
    def login_form(request: Request, next: str = "/console") -> HTMLResponse:  # noqa: A002
        return page(request, "login.html", {"next": _local(next), "error": None})

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not session.same_origin(request):
            return page(request, "message.html", {"title": "Refused", "message":
                        "The login form came from another site."}, status_code=403)
        key = await session.form_field(request, "key")
        target = _local(await session.form_field(request, "next") or "/console")
        principal = await run_in_threadpool(session.check_login, key)
        if principal is None:
            return page(request, "login.html", {"next": target, "error":
                        "That API key is unknown, revoked or malformed."}, status_code=401)
        response = RedirectResponse(target, status_code=303)
        session.set_key_cookie(response, request, key or "")
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        if session.same_origin(request):
            session.clear_key_cookie(response)
        return response

    @router.get("")
    def goal_list(request: Request, cursor: str | None = None, limit: int = 50) -> Response:
        viewer = _viewer(request)
        if isinstance(viewer, Response):
            return viewer
        try:
            query, form = _list_query(request)
            found = goal_queries.list_goals(query, tenant_id=viewer.tenant_id,
                                            limit=max(1, min(limit, 200)), cursor=cursor)
        except RequestError as exc:
            return page(request, "list.html", {"goals": [], "form": _blank_form(request),
                                               "error": exc.detail(), "next_url": None,
                                               "statuses": list(GoalStatus)}, 422)
        next_url = None
        if found.next_cursor:
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
            next_url = "/console?" + urlencode([*kept, ("cursor", found.next_cursor)])
        return page(request, "list.html", {"goals": found.goals, "form": form, "error": None,
                                           "next_url": next_url, "statuses": list(GoalStatus)})

    def goal_template(request: Request, goal_id: uuid.UUID, template: str) -> Response:
        viewer = _viewer(request)
        if isinstance(viewer, Response):
            return viewer
        try:
            record = goal_queries.goal_record(goal_id, tenant_id=viewer.tenant_id)
        except RequestError as exc:
            return _failure(request, exc)
        return page(request, template, _goal_context(record))

    @router.get("/goals/{goal_id}")
    def goal_page(request: Request, goal_id: uuid.UUID) -> Response:
        return goal_template(request, goal_id, "goal.html")

    @router.get("/goals/{goal_id}/details")
    def goal_details(request: Request, goal_id: uuid.UUID) -> Response:
        """The goal page's details (steps, LLM calls), which goal.js swaps in live."""
        return goal_template(request, goal_id, "_goal_details.html")

    @router.get("/goals/{goal_id}/data")
    def goal_data(request: Request, goal_id: uuid.UUID) -> Response:
        viewer = _viewer(request)
        if isinstance(viewer, Response):
            return JSONResponse({"detail": "log in again"}, status_code=401)
        try:
            record = goal_queries.goal_record(goal_id, tenant_id=viewer.tenant_id)
        except RequestError as exc:
            return JSONResponse({"detail": exc.detail()}, status_code=exc.http_status)
        return JSONResponse(_graph_data(record), headers={"Cache-Control": "no-store"})

    @router.get("/batches/{batch_id}")
    def batch_page(request: Request, batch_id: uuid.UUID) -> Response:
        viewer = _viewer(request)
        if isinstance(viewer, Response):
            return viewer
        try:
            report = batches.batch_status(batch_id, tenant_id=viewer.tenant_id)
            items = batches.batch_items(batch_id, tenant_id=viewer.tenant_id)
        except RequestError as exc:
            return _failure(request, exc)
        ids = [uuid.UUID(i["goal_id"]) for i in items if i.get("goal_id")]
        statuses = {str(k): v for k, v in goals.goal_statuses(ids).items()}
        ended = sum(n for s, n in report["counts"].items() if GoalStatus(s).is_final)
        return page(request, "batch.html", {"batch": report, "items": items,
                                            "statuses": statuses, "ended": ended})

    @router.get("/costs")
    def costs_page(request: Request, days: int = 30) -> Response:
        viewer = _viewer(request)
        if isinstance(viewer, Response):
            return viewer
        fleet_wide = KEYS_ADMIN in viewer.scopes
        try:
            rows = goal_queries.costs(tenant_id=viewer.tenant_id, fleet_wide=fleet_wide,
                                      days=days)
        except RequestError as exc:
            return _failure(request, exc)
        by_day: dict[Any, float] = {}
        for row in rows:
            by_day[row["day"]] = by_day.get(row["day"], 0.0) + float(row["cost_usd"])
        return page(request, "costs.html", {"rows": rows, "by_day": by_day, "days": days,
                                            "fleet_wide": fleet_wide,
                                            "total": sum(by_day.values())})

    return router


def _local(target: str) -> str:
    """A redirect target inside the console only (no open redirect)."""
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


def _blank_form(request: Request) -> dict[str, Any]:
    params = request.query_params
    return {**{name: params.get(name) or "" for name in
               ("created_after", "created_before", "metadata", "provider", "model", "batch")},
            "status": params.getlist("status")}


def _goal_context(record: Episode) -> dict[str, Any]:
    """What the goal page and its details fragment show."""
    settings = get_settings()
    view = record.goal
    workers: dict[int, str] = {}
    attempts: dict[int, list[Any]] = {}
    for run in record.runs:
        workers[run.step_id] = run.worker
        attempts.setdefault(run.step_id, []).append(run)
    flower = settings.flower_url.rstrip("/") if settings.flower_url else None
    trace_id = getattr(view, "trace_id", None)
    trace_url = (settings.console_trace_url.replace("{trace_id}", quote(str(trace_id), safe=""))
                 if trace_id and settings.console_trace_url else None)
    return {
        "goal": view, "runs": record.runs, "llm_calls": record.llm_calls,
        "workers": workers, "attempts": attempts, "final": view.status.is_final,
        "trace_url": trace_url,
        "flower_links": {s.id: f"{flower}/task/{step_task_id(str(view.id), s.id)}"
                         for s in view.steps} if flower else {},
    }


def _graph_data(record: Episode) -> dict[str, Any]:
    """What ``goal.js`` draws: steps and dependencies, and every attempt's times."""
    view = record.goal
    return {
        "id": str(view.id), "status": view.status.value, "final": view.status.is_final,
        "created_at": view.created_at.isoformat(),
        "finished_at": view.finished_at.isoformat() if view.finished_at else None,
        "now": datetime.now(UTC).isoformat(),
        "steps": [{"id": s.id, "kind": s.kind.value, "tool": s.tool, "status": s.status.value,
                   "attempt": s.attempt, "dependencies": s.dependencies,
                   "plan_version": s.plan_version} for s in view.steps],
        "runs": [{"step_id": r.step_id, "attempt": r.attempt, "worker": r.worker,
                  "started_at": r.started_at.isoformat(),
                  "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                  "outcome": r.outcome, "error": (r.error or "")[:300] or None}
                 for r in record.runs],
    }
