"""Group commit for the updater: the writes that arrive while a transaction is committing are written together
in the next one, so many updates share one log flush; each caller returns only once its own write committed."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from ddserver.db import Database
from ddserver.errors import DatabaseError, DatabaseTimeout, DatabaseUnavailable, NotFound
from ddserver.store import updates as store

logger = logging.getLogger(__name__)


class _Job:
    """One caller's update, and the lock it waits on until the committer has an answer for it."""

    __slots__ = ("_done", "error", "result", "update")

    def __init__(self, update: store.Update) -> None:
        self.update = update
        self.result: store.Applied | None = None
        self.error: BaseException | None = None
        # A plain lock, taken now and released by the committer: the cheapest one-shot signal in CPython.
        self._done = threading.Lock()
        self._done.acquire()

    def finish(self, result: store.Applied | NotFound) -> None:
        if isinstance(result, NotFound):
            self.error = result
        else:
            self.result = result
        self._done.release()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._done.release()

    def wait(self) -> store.Applied:
        self._done.acquire()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class Committer:
    """Writes updates in batches from one thread per process.

    A caller hands its update to ``apply`` and blocks. The committer thread takes everything that is waiting
    (up to ``max_batch``), writes it in one transaction (``store.apply_many``) and releases the callers once it
    has committed; what arrives meanwhile waits for the next transaction. An idle updater waits for nothing: a
    lone update is written at once. Under load, batches grow by themselves until a commit's flush is shared
    by as many updates as arrived during the previous one.

    A batch also waits, ``gather`` seconds at most, for the requests this process is answering that have not
    reached the committer yet (``arriving``/``leaving``): several clients whose previous updates were written
    together send their next ones together, and without the wait the first of them would be written alone.
    Fewer, larger transactions cost the database and this process less per update.

    If a batch fails for a reason other than a lost database, its updates are written again one transaction
    each, so that one bad update fails alone; if the database stopped answering, the updates waiting for the
    next batch fail with it rather than wait again. The thread ends after ``idle`` seconds without work (closing
    its connection) and starts again with the next update.
    """

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 200,
        idle: float = 30.0,
        gather: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        # Connections of its own that send a batch's writes and commit in one round trip (MySQL).
        self.db = db.with_multi_statements()
        self.max_batch = max_batch
        self.idle = idle
        self.gather = gather
        self.on_batch = on_batch
        self._reset()
        # A server that forks workers after making the app (gunicorn --preload): the parent's thread and lock
        # do not come along, so the child starts afresh. A weak reference, so the registration keeps no app.
        reset = weakref.WeakMethod(self._reset)
        os.register_at_fork(after_in_child=lambda: (method := reset()) and method())

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[_Job] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Requests under way that have not handed an update over nor left.
        self._arriving = 0
        self._gathering = False
        #: The size of the last batch: the callers it answered tend to come back together.
        self._last = 0
        self._local = threading.local()

    def arriving(self) -> None:
        """A request begins that may hand an update over: batches wait for it (``gather`` at most)."""
        with self._cond:
            self._arriving += 1
        self._local.arriving = True

    def leaving(self) -> None:
        """The request that called ``arriving`` in this thread is done (a no-op once it handed an update over)."""
        if self._local.__dict__.pop("arriving", False):
            with self._cond:
                self._arriving -= 1
                if self._gathering and not self._waits_more():
                    self._cond.notify()

    def apply(self, update: store.Update) -> store.Applied:
        """Write ``update`` with whatever else is waiting, and return once that transaction has committed.

        :raises NotFound: the host was deleted meanwhile.
        :raises DatabaseError: the write failed (nothing of it was committed, unless the connection was lost
            during the commit itself).
        """
        job = _Job(update)
        arrived = self._local.__dict__.pop("arriving", False)
        with self._cond:
            if arrived:
                self._arriving -= 1
            if self._closed:
                raise DatabaseUnavailable("database: the updater is shutting down")
            self._pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ddserver-committer", daemon=True)
                self._thread.start()
            elif not (self._gathering and self._waits_more()):
                # A gathering committer is woken only once it has what it waits for: each wake-up is a
                # switch between threads, and they cost more than the rest of an update's handing over.
                self._cond.notify()
        return job.wait()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is waiting, then stop the thread."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    if not self._pending and not self._closed:
                        self._cond.wait(self.idle)
                    if not self._pending:
                        # Idle (or closing): a later apply starts a new thread under the same lock.
                        self._thread = None
                        return
                    if self.gather > 0 and self._waits_more() and not self._closed:
                        self._gather()
                    batch = self._pending[: self.max_batch]
                    self._last = len(batch)
                    del self._pending[: self.max_batch]
                self._commit(batch)
        finally:
            self.db.close()

    def _waits_more(self) -> bool:
        """A batch being gathered waits for more: requests are under way, or fewer updates wait than the
        last batch had, and the batch is not full (called holding the condition)."""
        return bool(self._arriving or len(self._pending) < self._last) and len(self._pending) < self.max_batch

    def _gather(self) -> None:
        """Wait (holding the condition) until the requests under way have handed their updates over or left,
        or ``gather`` seconds have passed, or the batch is full."""
        deadline = time.monotonic() + self.gather
        self._gathering = True
        try:
            while self._waits_more():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)
        finally:
            self._gathering = False

    def _commit(self, batch: list[_Job]) -> None:
        try:
            try:
                results = store.apply_many(self.db, [job.update for job in batch])
            except DatabaseUnavailable as exc:
                # The database is gone (the transaction already reconnected once): every member would fail
                # the same way, each after a connect timeout of its own.
                if isinstance(exc, DatabaseTimeout):
                    # It stopped answering: what arrived during the wait would wait as long again, on top of
                    # the wait it has had; its requests are answered now (911), as this batch's are.
                    with self._cond:
                        batch, self._pending = batch + self._pending, []
                for job in batch:
                    job.fail(exc)
                return
            except DatabaseError as exc:
                if len(batch) == 1:
                    batch[0].fail(exc)
                    return
                logger.warning("a batch of %d updates failed (%s); writing them one by one", len(batch), exc)
                for job in batch:
                    self._commit_one(job)
                return
            if self.on_batch is not None:
                self.on_batch(len(batch))
            for job, result in zip(batch, results, strict=True):
                job.finish(result)
        except BaseException as exc:
            logger.exception("group commit: unexpected error")
            for job in batch:
                if job.result is None and job.error is None:
                    job.fail(exc)

    def _commit_one(self, job: _Job) -> None:
        try:
            result = store.apply_many(self.db, [job.update])[0]
        except DatabaseError as exc:
            job.fail(exc)
            return
        if self.on_batch is not None:
            self.on_batch(1)
        job.finish(result)
