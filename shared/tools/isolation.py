"""Run CPU-bound (``isolated``) tools in a child process where a time limit holds.

A thread of a worker that computes in pure Python holds the GIL: ``round(1, -10**7)``
stalls every other thread of the process (other steps, the lease heartbeat) for
seconds, and a thread cannot be stopped from outside. So an isolated tool runs in a
small per-worker-process :class:`~concurrent.futures.ProcessPoolExecutor` (``spawn``
context, ``TOOL_CPU_PROCESSES`` children, created on first use, never at import). Each
call may run ``TOOL_CPU_TIME_LIMIT_S`` seconds; past that its child is killed, the pool
is dropped (a new one is made by the next call) and the call raises ``ToolError``
("time limit exceeded").

Arguments, context and output cross the process boundary as JSON text (the pool's
transport pickles only those strings); the child imports the tool's ``run`` function
and input model by name.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.errors import RetryableToolError, ToolError

if TYPE_CHECKING:
    from shared.tools.base import Tool, ToolContext

# Start-up of a spawned child (imports of pydantic and SQLAlchemy) on a loaded host;
# not counted against the per-call limit.
_WARM_UP_TIMEOUT_S = 60.0

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_slots: threading.Semaphore | None = None
_pool_size = 1
_warmed: set[str] = set()  # tool modules imported by every child of the current pool


def _exit_with_parent(parent_pid: int) -> None:
    """Child-side pool initializer: exit when the worker that started this child is gone.

    A killed worker (SIGKILL, OOM) cannot shut its pool down, and an idle child would
    otherwise wait for work forever; a thread checks the parent every second.
    """
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm(module_name: str, hold_s: float) -> int:
    """Child-side: import ``module_name`` (a tool's module) and return the child's pid."""
    import time

    importlib.import_module(module_name)
    time.sleep(hold_s)
    return os.getpid()


def _import(ref: str) -> Any:
    module_name, _, qualname = ref.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _reference(value: Any, what: str, tool_name: str) -> str:
    qualname = getattr(value, "__qualname__", "")
    if not qualname or "<" in qualname:
        raise ToolError(f"isolated tool {tool_name!r}: its {what} must be a module-level name")
    return f"{value.__module__}:{qualname}"


def _child_run(run_ref: str, model_ref: str, args_json: str, ctx_json: str) -> str:
    """Child-side: run the tool on JSON arguments; return ``{"output"}`` or ``{"error"}``
    as JSON text (exceptions never cross the boundary as pickles)."""
    from shared.tools.base import ToolContext

    try:
        run = _import(run_ref)
        args = _import(model_ref).model_validate_json(args_json)
        ctx = ToolContext(**json.loads(ctx_json))
        return json.dumps({"output": run(args, ctx)})
    except RetryableToolError as exc:
        return json.dumps({"error": "retryable", "message": str(exc)})
    except ToolError as exc:
        return json.dumps({"error": "tool", "message": str(exc)})
    except Exception as exc:  # a bug in the tool: report it as a failure of the step
        return json.dumps({"error": "crash", "message": f"{type(exc).__name__}: {exc}"})


def _current_pool(module_name: str) -> tuple[ProcessPoolExecutor, threading.Semaphore]:
    """The pool of this process, made on first use, its children started and with
    ``module_name`` imported in each (so a call's time limit never includes them)."""
    global _pool, _slots, _pool_size
    from shared.settings import get_settings

    with _lock:
        if _pool is None:
            _pool_size = processes = get_settings().tool_cpu_processes
            _pool = ProcessPoolExecutor(max_workers=processes,
                                        mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_exit_with_parent,
                                        initargs=(os.getpid(),))
            _warmed.clear()
            if _slots is None:
                _slots = threading.Semaphore(processes)
        if module_name not in _warmed:
            processes = _pool_size
            # Concurrent warm-ups make the pool start every child.
            warm = [_pool.submit(_warm, module_name, 0.2 if processes > 1 else 0.0)
                    for _ in range(processes)]
            try:
                for future in warm:
                    future.result(timeout=_WARM_UP_TIMEOUT_S)
            except (FutureTimeout, BrokenProcessPool) as exc:
                pool, _pool = _pool, None
                _kill(pool)
                raise RetryableToolError(f"tool process did not start: {exc!r}") from None
            except Exception as exc:  # the tool's module does not import
                raise ToolError(f"tool module {module_name!r} cannot be imported in a tool "
                                f"process: {type(exc).__name__}: {exc}") from None
            _warmed.add(module_name)
        assert _slots is not None
        return _pool, _slots


def _discard(pool: ProcessPoolExecutor) -> None:
    """Kill ``pool``'s children and forget it, unless another thread already did."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    _kill(pool)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Kill every child of ``pool`` and shut it down without waiting."""
    # ProcessPoolExecutor has no public way to kill a busy child: use its process table.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Kill this process's tool children, if any (for tests and orderly exits)."""
    pool = _pool
    if pool is not None:
        _discard(pool)


def run_isolated(tool: Tool, args: BaseModel, ctx: ToolContext) -> Any:
    """Run ``tool`` on validated ``args`` in a child process under the CPU time limit.

    Args:
        tool: An ``isolated`` tool whose ``run`` and ``input_model`` are module-level.
        args: Its validated arguments (sent as JSON).
        ctx: The step's context; the child gets its ids and attempt only.

    Returns:
        The tool's JSON output.

    Raises:
        ToolError: The tool refused its input, failed, or ran past
            ``TOOL_CPU_TIME_LIMIT_S`` seconds ("time limit exceeded").
        RetryableToolError: The child died (e.g. killed with its pool).
    """
    from shared.settings import get_settings

    limit_s = get_settings().tool_cpu_time_limit_s
    run_ref = _reference(tool.run, "run function", tool.name)
    model_ref = _reference(tool.input_model, "input model", tool.name)
    ctx_json = json.dumps({"goal_id": ctx.goal_id, "step_id": ctx.step_id,
                           "attempt": ctx.attempt})
    _, slots = _current_pool(tool.run.__module__)
    with slots:  # at most one call per child: a queued call's limit starts when it runs
        pool, _ = _current_pool(tool.run.__module__)  # a fresh one if a timeout killed it
        try:
            future = pool.submit(_child_run, run_ref, model_ref, args.model_dump_json(),
                                 ctx_json)
            reply = json.loads(future.result(timeout=limit_s))
        except FutureTimeout:
            _discard(pool)
            raise ToolError(f"{tool.name}: time limit exceeded ({limit_s:g} s)") from None
        except (BrokenProcessPool, RuntimeError) as exc:
            # RuntimeError: submit() on a pool another thread has just shut down.
            _discard(pool)
            raise RetryableToolError(f"{tool.name}: its process was lost ({exc})") from None
    if "output" in reply:
        return reply["output"]
    if reply["error"] == "retryable":
        raise RetryableToolError(reply["message"])
    raise ToolError(reply["message"] if reply["error"] == "tool"
                    else f"{tool.name} failed: {reply['message']}")
