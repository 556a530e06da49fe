"""CPU per stored quiz attempt: AttemptStore and AttemptWriter, new against the baseline.

Stores N graded attempts (five answers each, like the seed quiz; eight learners, two lessons)
into a throwaway SQLite file per run, in batches of 1, 8, 32 and 128, and prints the CPU
time per attempt for the app's implementation and for the baseline kept below: the SQLAlchemy
Core `record_attempts` of commit 3de11b6 (and its writer), run in the same process on the same
kind of file. Not a unit test. Rows:

- writer's store (thread): what the writer does per batch, `time.thread_time` of the storing
  thread: before, a Session and the baseline; now `AttemptStore.record` on the connection the
  writer keeps.
- AttemptWriter: `batch` requests awaited at once from an event loop. The baseline's writer
  is a thread, so all its CPU is the web process's (`time.process_time`); the app's writer is a
  process of its own: "web process" counts only the event loop's side (what competes with
  requests), "all CPU" adds the writer process's (from /proc).

    python bench/store.py [--attempts 2048] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, select, update  # noqa: E402
from sqlalchemy.dialects import postgresql, sqlite  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.accounts.progress import (  # noqa: E402
    AttemptStore,
    GradeLike,
    NoSuchUser,
)
from app.accounts.writer import AttemptWriter  # noqa: E402
from app.db import Database, begin_write, commit, upgrade  # noqa: E402
from app.models import (  # noqa: E402
    AttemptAnswer,
    LessonProgress,
    QuizAttempt,
    User,
    utcnow,
)
from app.quizzes.grading import Grade, QuestionResult  # noqa: E402

BATCHES = (1, 8, 32, 128)
LEARNERS = 8
LESSONS = ("lesson-a", "lesson-b")


# --- the baseline: record_attempts and the writer as they were at commit 3de11b6 ---------------


def baseline_record_attempts(
    session: Session, *, entries: Sequence[tuple[int, GradeLike]]
) -> list[int | NoSuchUser]:
    """The previous implementation (SQLAlchemy Core statements on the session's connection)."""
    begin_write(session)
    try:
        conn = session.connection()
        users = {user_id for user_id, _ in entries}
        existing = set(
            conn.scalars(select(User.__table__.c.id).where(User.__table__.c.id.in_(users)))
        )
        kept = [(i, user_id, grade) for i, (user_id, grade) in enumerate(entries)
                if user_id in existing]  # fmt: skip
        results: list[int | NoSuchUser] = [NoSuchUser(user_id) for user_id, _ in entries]
        if not kept:
            commit(session)
            return results
        now = utcnow()
        pairs = sorted({(user_id, grade.lesson_id) for _, user_id, grade in kept})
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        conn.execute(
            insert(LessonProgress.__table__)
            .values([
                {"user_id": u, "lesson_id": lesson, "status": "in_progress", "attempts": 0,
                 "started_at": now, "updated_at": now}
                for u, lesson in pairs
            ])
            .on_conflict_do_nothing(index_elements=["user_id", "lesson_id"])
        )  # fmt: skip
        table = LessonProgress.__table__
        locked = conn.execute(
            select(table)
            .where(
                table.c.user_id.in_({u for u, _ in pairs}),
                table.c.lesson_id.in_({lesson for _, lesson in pairs}),
            )
            .with_for_update()
        ).mappings()
        state = {(r["user_id"], r["lesson_id"]): dict(r) for r in locked}
        attempt_rows = []
        for _, user_id, grade in kept:
            row = state[(user_id, grade.lesson_id)]
            percent = float(grade.percent)
            attempt_rows.append({
                "user_id": user_id, "lesson_id": grade.lesson_id, "round": row["attempts"],
                "score": grade.score, "total": grade.total, "percent": percent,
                "passed": bool(grade.passed), "created_at": now,
            })  # fmt: skip
            row["attempts"] += 1
            row["updated_at"] = now
            if row["best_percent"] is None or percent > row["best_percent"]:
                row["best_percent"] = percent
            if grade.passed and row["status"] != "completed":
                row["status"], row["completed_at"] = "completed", now
        attempts_table = QuizAttempt.__table__
        ids = conn.scalars(
            attempts_table.insert().returning(attempts_table.c.id, sort_by_parameter_order=True),
            attempt_rows,
        ).all()
        conn.execute(
            AttemptAnswer.__table__.insert(),
            [
                {"attempt_id": attempt_id, "position": position, "question_id": r.question_id,
                 "selected_option_id": r.selected_option_id,
                 "correct_option_id": r.correct_option_id, "correct": bool(r.correct)}
                for attempt_id, (_, _, grade) in zip(ids, kept, strict=True)
                for position, r in enumerate(grade.results)
            ],
        )  # fmt: skip
        conn.execute(
            update(table)
            .where(table.c.user_id == bindparam("k_user"))
            .where(table.c.lesson_id == bindparam("k_lesson"))
            .values(
                attempts=bindparam("attempts"), best_percent=bindparam("best_percent"),
                status=bindparam("status"), completed_at=bindparam("completed_at"),
                updated_at=bindparam("updated_at"),
            ),
            [{"k_user": u, "k_lesson": lesson, **{k: state[(u, lesson)][k] for k in
              ("attempts", "best_percent", "status", "completed_at", "updated_at")}}
             for u, lesson in pairs if (u, lesson) in state],
        )  # fmt: skip
        commit(session)
    except BaseException:
        session.rollback()
        raise
    for (i, _, _), attempt_id in zip(kept, ids, strict=True):
        results[i] = attempt_id
    return results


class BaselineWriter:
    """The previous AttemptWriter: a session per batch, one call_soon_threadsafe per batch."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    async def record(self, *, user_id: int, grade: GradeLike) -> int:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((user_id, grade, future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch, stop = [job], False
            while len(batch) < 256:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            with self.db.session() as session:
                results = baseline_record_attempts(
                    session, entries=[(u, g) for u, g, _, _ in batch]
                )
            by_loop: dict = {}
            for (_, _, future, loop), result in zip(batch, results, strict=True):
                by_loop.setdefault(loop, []).append((future, result))
            for loop, settled in by_loop.items():
                loop.call_soon_threadsafe(_settle, settled)
            if stop:
                return


def _settle(settled) -> None:
    for future, result in settled:
        if not future.done():
            future.set_result(result)


# --- the measurement ----------------------------------------------------------------------------


def grades(n: int) -> list[tuple[int, Grade]]:
    """n (user id, grade) entries: eight learners in turn, two lessons, varied scores."""
    entries = []
    for i in range(n):
        score = i % 6
        results = tuple(
            QuestionResult(
                question_id=f"q{k}",
                selected_option_id=None if (i + k) % 7 == 0 else f"opt-{k}-{(i + k) % 4}",
                correct_option_id=f"opt-{k}-0",
                correct=k < score,
                explanation_html=None,
            )
            for k in range(5)
        )
        percent = round(100 * score / 5, 1)
        grade = Grade(LESSONS[i % 2], score, 5, percent, score * 100 >= 80 * 5, 80, results)
        entries.append((1 + i % LEARNERS, grade))
    return entries


def fresh_db(folder: Path, name: str) -> Database:
    """A migrated SQLite file with the learners in it."""
    db = Database.open(f"sqlite:///{folder / name}.db")
    upgrade(db.engine)
    with db.session() as session:
        session.add_all(
            User(username=f"u{i}", username_key=f"u{i}", password_hash="x") for i in range(LEARNERS)
        )
        session.commit()
    return db


def direct(db: Database, store: Callable, entries: list, batch: int) -> float:
    """CPU seconds of this thread to store `entries` in batches, a session per batch (as the
    writer does)."""
    gc.collect()
    start = time.thread_time()
    for i in range(0, len(entries), batch):
        with db.session() as session:
            store(session, entries=entries[i : i + batch])
    return time.thread_time() - start


def kept_connection(db: Database, entries: list, batch: int) -> float:
    """CPU seconds of this thread to store `entries` in batches with AttemptStore (the writer
    thread's own path: one kept DB-API connection, no Session)."""
    store = AttemptStore(db)
    try:
        gc.collect()
        start = time.thread_time()
        for i in range(0, len(entries), batch):
            store.record(entries[i : i + batch])
        return time.thread_time() - start
    finally:
        store.close()


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_writer(writer, entries: list, batch: int) -> tuple[float, float]:
    """CPU seconds to store `entries` through a writer from an event loop, `batch` requests
    waiting at once: (this process, the writer's own process if it has one). One attempt is
    stored first, untimed, so that starting the writer is not counted."""
    spent: list[float] = []

    async def run() -> None:
        warm_up, rest = entries[0], entries[1:]
        await writer.record(user_id=warm_up[0], grade=warm_up[1])
        child = getattr(getattr(writer, "_process", None), "pid", None)
        gc.collect()
        start, child_start = time.process_time(), _cpu_of(child) if child else 0.0
        for i in range(0, len(rest), batch):
            await asyncio.gather(
                *(writer.record(user_id=u, grade=g) for u, g in rest[i : i + batch])
            )
        spent.extend([time.process_time() - start, _cpu_of(child) - child_start if child else 0])

    asyncio.run(run())
    return spent[0], spent[1]


def show(what: str, batch: int, old: float, new: float) -> None:
    print(f"{what:26s} {batch:5d} {old:10.1f} {new:10.1f} {new / old:12.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    n = args.attempts
    entries = grades(n)
    print(f"SQLite file, {n} attempts of 5 answers per run, best of {args.repeat}")
    print("CPU µs per attempt          batch   baseline        new   new/baseline")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = 0

        def best(measure: Callable[[Database], float]) -> float:
            nonlocal runs
            times = []
            for _ in range(args.repeat):
                runs += 1
                db = fresh_db(folder, f"run{runs}")
                try:
                    times.append(measure(db))
                finally:
                    db.close()
            return min(times) / n * 1e6

        for batch in BATCHES:
            old = best(lambda db: direct(db, baseline_record_attempts, entries, batch))  # noqa: B023
            kept = best(lambda db: kept_connection(db, entries, batch))  # noqa: B023
            show("writer's store (thread)", batch, old, kept)
        for batch in BATCHES:

            def old_writer(db: Database) -> float:
                writer = BaselineWriter(db)
                try:
                    return sum(through_writer(writer, entries, batch))  # noqa: B023
                finally:
                    writer.close()

            def new_writer(db: Database, *, part: slice) -> float:
                writer = AttemptWriter(db)
                try:
                    return sum(through_writer(writer, entries, batch)[part])  # noqa: B023
                finally:
                    writer.close()

            old = best(old_writer)
            show("AttemptWriter, web process", batch, old, best(partial(new_writer, part=slice(1))))
            show("AttemptWriter, all CPU", batch, old, best(partial(new_writer, part=slice(2))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
