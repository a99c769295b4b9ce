"""Loaded by every bench worker process (on its PYTHONPATH): counts the SQL it sends.

Each process writes its running count to `$BENCH_PROBE_DIR/sql-<pid>` twice a second, so
the bench can take deltas per phase without touching meetsync's own code.
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


if _DIR and os.environ.get("BENCH_SQL_KINDS"):
    # which statements: `$BENCH_PROBE_DIR/kinds-<pid>` holds each statement's opening and count
    import collections
    import json

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

    def _dump_forever() -> None:
        while True:
            time.sleep(1.0)
            with open(os.path.join(str(_DIR), f"kinds-{os.getpid()}"), "w") as out:
                json.dump(_kinds, out)

    os.register_at_fork(
        after_in_child=lambda: threading.Thread(target=_dump_forever, daemon=True).start()
    )
