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
