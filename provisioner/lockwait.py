"""Who blocks a statement: while a batch waits on a lock, a watcher on another session of the
same operator reads pg_blocking_pids for it, so a lock timeout can say which session (by pid and
role, with its state) held what the batch needed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# state and xact_start show only to pg_read_all_stats (the guard's role): the master sees the role.
BLOCKERS = (
    "select a.pid, coalesce(a.usename, '?'), a.state, extract(epoch from now() - a.xact_start)::int "
    "from pg_stat_activity a where a.pid = any(pg_blocking_pids(%s)) order by a.pid"
)
POLL_SECONDS = 0.5


def describe(rows: list[tuple[int, str, str | None, int | None]]) -> str:
    if not rows:
        return "no blocking session seen"
    out = []
    for pid, role, state, age in rows:
        seen = f", {state}" if state else ""
        seen += f", in its transaction for {age} s" if age is not None else ""
        out.append(f"pid {pid} (role {role}{seen})")
    return "; ".join(out)


class Watch:
    """The sessions last seen blocking `pid`."""

    def __init__(self) -> None:
        self.blockers: list[tuple[int, str, str | None, int | None]] = []

    def __str__(self) -> str:
        return describe(self.blockers)


@contextmanager
def watch(observer: psycopg.Connection, pid: int) -> Iterator[Watch]:
    """Poll, from `observer` (an idle session nobody else uses meanwhile), who blocks `pid`."""
    seen = Watch()
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                # pg_stat_activity is read once per transaction, and the observer stays in one
                observer.execute("select pg_stat_clear_snapshot()")
                rows = observer.execute(BLOCKERS, (pid,)).fetchall()
            except psycopg.Error:
                return
            if rows:
                seen.blockers = rows

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()
