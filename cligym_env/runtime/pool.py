"""A warm pool: containers started ahead of time, so an episode's `reset` takes one instead of starting one.

A cold start (create, start, attach a shell) costs about a second, more with several environments at once; RL
trainers reset constantly. `WarmPool.take` hands out a session that was started in the background and never
used, and starts its replacement in the background; when the pool is empty it starts one in the caller, as
before. A pooled container is exactly what a cold start would give: the same image, options and limits, and
no command run in it (the episode's clock, `since`, starts when it is taken, after its start-up). Containers
left in the pool are removed by `close`, at exit, and by `cligym gc` (they carry this process's label).
"""

from __future__ import annotations

import atexit
import threading
from collections import defaultdict

from cligym_env.runtime.session import ContainerSession


class WarmPool:
    """Up to `size` started, untouched sessions per (image, options), refilled in the background."""

    def __init__(self, size: int = 1):
        self.size = size
        self._ready: dict[tuple, list[ContainerSession]] = defaultdict(list)
        self._starting: dict[tuple, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._closed = False
        self._threads: list[threading.Thread] = []

    def take(self, image: str, **options) -> ContainerSession:
        """A running session of `image` with `options` (those of `ContainerSession.start`): a pooled one when
        ready (alive), else one started now. Either way a replacement starts in the background."""
        key = (image, tuple(sorted(options.items())))
        session = None
        while session is None:
            with self._lock:
                candidate = self._ready[key].pop() if self._ready[key] else None
            if candidate is None:
                break
            if candidate.container_state() == "running":
                session = candidate
            else:  # stopped or removed while it waited (`cligym gc`, a daemon restart)
                candidate.close()
        self._refill(key, image, options)
        return session or ContainerSession.start(image, **options)

    def ready(self, image: str, **options) -> int:
        """How many sessions of `image` with `options` wait in the pool."""
        with self._lock:
            return len(self._ready[(image, tuple(sorted(options.items())))])

    def _refill(self, key: tuple, image: str, options: dict) -> None:
        with self._lock:
            missing = self.size - len(self._ready[key]) - self._starting[key]
            if self._closed or missing <= 0:
                return
            self._starting[key] += missing
        for _ in range(missing):
            thread = threading.Thread(target=self._start_one, args=(key, image, options), daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _start_one(self, key: tuple, image: str, options: dict) -> None:
        try:
            session = ContainerSession.start(image, **options)
        except Exception:  # noqa: BLE001 - a failed background start leaves the pool short; `take` starts one
            session = None
        with self._lock:
            self._starting[key] -= 1
            if session is not None and not self._closed:
                self._ready[key].append(session)
                session = None
        if session is not None:  # closed meanwhile
            session.close()

    def close(self, wait: float = 60.0) -> None:
        """Remove every pooled container; those being started are removed when they are up, waited for up to
        `wait` seconds (so that nothing outlives the pool)."""
        with self._lock:
            self._closed = True
            sessions = [s for ready in self._ready.values() for s in ready]
            self._ready.clear()
            threads = list(self._threads)
        for session in sessions:
            session.close()
        for thread in threads:
            thread.join(timeout=wait)


_POOLS: dict[int, WarmPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(size: int) -> WarmPool:
    """The process's pool for `size` sessions per image (one per size; all closed at exit)."""
    with _POOLS_LOCK:
        if size not in _POOLS:
            _POOLS[size] = WarmPool(size)
        return _POOLS[size]


@atexit.register
def close_pools() -> None:
    """Close every shared pool (their containers are removed); the next `shared_pool` call starts afresh."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
