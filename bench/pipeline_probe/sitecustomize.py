"""Loaded by every bench worker process (on its PYTHONPATH): counts the SQL it sends.

Each process writes its running count to `$BENCH_PROBE_DIR/sql-<pid>` twice a second, so
the bench can take deltas per phase without touching meetsync's own code.

`BENCH_ACTOR_CPU=1` (bench.pipeline sets it) keeps each actor's calls and thread CPU, for
`cpu_ms_per_meeting_by_actor`. For looking closer (the files stay in the run's temporary
directory): `BENCH_SQL_KINDS=1` counts statements by their opening and caller;
`BENCH_KEEP_DB=1` on `bench.pipeline` keeps the run's database.
"""

from __future__ import annotations

import os
import threading
import time

_DIR = os.environ.get("BENCH_PROBE_DIR")
_count = 0


def _write_forever() -> None:
    while True:
        time.sleep(0.5)
        try:
            with open(os.path.join(str(_DIR), f"sql-{os.getpid()}"), "w") as out:
                out.write(str(_count))
        except OSError:
            return


def _start() -> None:
    global _count
    _count = 0
    threading.Thread(target=_write_forever, daemon=True, name="bench-probe").start()


if _DIR:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _counted(*_: object) -> None:
        global _count
        _count += 1

    os.register_at_fork(after_in_child=_start)
    _start()


def _dumped_at_fork(name: str, data: object) -> None:
    """In each forked worker, `data` as JSON in `$BENCH_PROBE_DIR/<name>-<pid>` every second."""
    import json

    def dump_forever() -> None:
        while True:
            time.sleep(1.0)
            with open(os.path.join(str(_DIR), f"{name}-{os.getpid()}"), "w") as out:
                json.dump(data, out)

    os.register_at_fork(
        after_in_child=lambda: threading.Thread(target=dump_forever, daemon=True).start()
    )


if _DIR and os.environ.get("BENCH_SQL_KINDS"):
    # which statements: `$BENCH_PROBE_DIR/kinds-<pid>` holds each statement's opening and count
    import collections

    _kinds: collections.Counter[str] = collections.Counter()

    import sys

    _OURS = ("/workers/", "/extraction/", "/mappings/", "/connectors/", "/admin/", "/meetsync/")

    def _caller() -> str:
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if any(part in name for part in _OURS) and "/db/session.py" not in name:
                return f"{name.rsplit('/', 2)[-2]}/{name.rsplit('/', 1)[-1]}:{frame.f_lineno}"
            frame = frame.f_back  # type: ignore[assignment]
        return "?"

    @event.listens_for(Engine, "before_cursor_execute")
    def _kind(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        _kinds[" ".join(statement.split())[:60] + " @ " + _caller()] += 1

    _dumped_at_fork("kinds", _kinds)


if _DIR and os.environ.get("BENCH_ACTOR_CPU"):
    # where the CPU goes: `$BENCH_PROBE_DIR/actors-<pid>` holds each actor's calls and thread CPU
    import dramatiq

    _spent: dict[str, list[float]] = {}
    _call = dramatiq.Actor.__call__

    def _timed(self: dramatiq.Actor, *args: object, **kwargs: object) -> object:
        began = time.thread_time()
        try:
            return _call(self, *args, **kwargs)
        finally:
            spent = _spent.setdefault(self.actor_name, [0, 0.0])
            spent[0] += 1
            spent[1] += time.thread_time() - began

    dramatiq.Actor.__call__ = _timed  # type: ignore[method-assign,assignment]

    _dumped_at_fork("actors", _spent)
