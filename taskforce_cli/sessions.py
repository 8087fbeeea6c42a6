"""``taskforce session show ID``: a session's history (its goals, their answers, the
running summary), as ``GET /v1/sessions/{id}`` shows it. ``taskforce run --session ID``
continues a session.

It reads the servers named by ``REDIS_URL`` and ``DATABASE_URL`` (or the embedded
ones), as the operator: the sessions of the ``default`` tenant, the one CLI goals
belong to.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shared.errors import TaskforceError
from taskforce_cli.console import fail, out

app = typer.Typer(help="Sessions: goals that continue one another.", no_args_is_help=True)


@app.command()
def show(
    session_id: Annotated[str, typer.Argument(help="The session id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the session object.")] = False,
) -> None:
    """Print a session's goals, oldest first, with their answers and its summary."""
    from shared.memory.sessions import get_session
    from taskforce_cli.fleet import local_fleet

    try:
        with local_fleet(workers=0):
            view = get_session(session_id)
    except TaskforceError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(view.model_dump(mode="json")))
        return
    out.print(f"session {view.id}: {view.total_goals} goals", markup=False)
    if view.summary:
        out.print(f"summary ({view.summarized_goals} goals): {view.summary}", markup=False)
    for number, goal in enumerate(view.goals, start=1):
        outcome = goal.answer if goal.answer is not None else (goal.error or "")
        reused = f" (plan reused from {goal.reused_plan_from})" if goal.reused_plan_from else ""
        out.print(f"{number}. ({goal.status.value}) {goal.goal}{reused}", markup=False)
        out.print(f"   -> {outcome}", markup=False)
