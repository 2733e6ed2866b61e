"""TaskSetManager bookkeeping: pending order, retries, aborts, executor avoidance."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from asyncspark.scheduler.stage import TaskSet
from asyncspark.scheduler.task_set_manager import TaskSetManager

ALIVE = ("a", "b", "c")


def make(n: int = 3, max_failures: int = 4) -> TaskSetManager:
    return TaskSetManager(TaskSet(0, 0, 0, 0, b"", list(range(10, 10 + n))), max_failures)


def launch(tsm: TaskSetManager, task_id: int, executor: str = "a",
           alive=ALIVE) -> int | None:
    index = tsm.next_task(executor, alive)
    if index is not None:
        tsm.launched(task_id, index)
    return index


def test_pending_tasks_come_out_in_index_order():
    tsm = make(4)
    assert [launch(tsm, t) for t in range(5)] == [0, 1, 2, 3, None]
    assert tsm.running == {0: 0, 1: 1, 2: 2, 3: 3}
    assert not tsm.finished


def test_successes_finish_the_set_and_make_it_a_zombie():
    tsm = make(2)
    launch(tsm, 0)
    launch(tsm, 1)
    assert tsm.succeeded(1) == 1
    assert not tsm.finished
    assert not tsm.zombie
    assert tsm.succeeded(0) == 0
    assert tsm.finished
    assert tsm.zombie
    assert tsm.next_task("a", ALIVE) is None


def test_duplicate_or_unknown_success_is_ignored():
    tsm = make(2)
    launch(tsm, 0)
    assert tsm.succeeded(0) == 0
    assert tsm.succeeded(0) is None
    assert tsm.succeeded(99) is None
    assert tsm.num_success == 1


def test_success_of_a_second_copy_is_a_duplicate():
    tsm = make(1)
    launch(tsm, 0)
    tsm.launched(1, 0)  # a second (e.g. speculative) copy of index 0
    assert tsm.succeeded(1) == 0
    assert tsm.succeeded(0) is None
    assert tsm.num_success == 1


def test_attempts_are_numbered_per_index():
    tsm = make(2)
    assert tsm.launched(0, 0) == 0
    assert tsm.launched(1, 1) == 0
    assert tsm.launched(2, 0) == 1
    assert tsm.launched(3, 0) == 2
    assert tsm.attempts == [3, 1]


def test_failed_task_goes_back_to_the_front_of_the_queue():
    tsm = make(3)
    launch(tsm, 0)
    launch(tsm, 1)
    assert tsm.failed(1, "a", counts=True) == (1, False)
    assert list(tsm.pending) == [1, 2]
    assert tsm.failures == [0, 1, 0]
    assert 1 not in tsm.running
    # Executor "b" gets the retry first; the retry is attempt 1.
    index = tsm.next_task("b", ALIVE)
    assert index == 1
    assert tsm.launched(5, index) == 1


def test_uncounted_failures_retry_forever_without_counting():
    tsm = make(1, max_failures=2)
    for task_id in range(10):
        assert launch(tsm, task_id) == 0
        assert tsm.failed(task_id, "a", counts=False) == (0, False)
    assert tsm.failures == [0]
    assert tsm.failed_on == {}
    assert not tsm.zombie
    assert tsm.attempts == [10]


def test_abort_after_max_failures():
    tsm = make(2, max_failures=3)
    executors = itertools.cycle(ALIVE)
    for task_id in range(2):
        ex = next(executors)
        assert launch(tsm, task_id, ex) == 0
        assert tsm.failed(task_id, ex, counts=True) == (0, False)
    assert launch(tsm, 2, "c") == 0
    assert tsm.failed(2, "c", counts=True) == (0, True)
    assert tsm.failures[0] == 3
    assert tsm.zombie
    assert tsm.next_task("a", ALIVE) is None
    assert 0 not in tsm.pending


def test_max_failures_one_aborts_on_first_failure():
    tsm = make(1, max_failures=1)
    launch(tsm, 0)
    assert tsm.failed(0, "a", counts=True) == (0, True)


def test_failures_after_abort_or_success_do_not_requeue():
    tsm = make(2, max_failures=1)
    launch(tsm, 0)
    launch(tsm, 1)
    assert tsm.failed(0, "a", counts=True) == (0, True)
    # The other task's attempt, killed because of the abort, is not retried.
    assert tsm.failed(1, "b", counts=False) == (1, False)
    assert list(tsm.pending) == []

    tsm = make(1)
    launch(tsm, 0)
    tsm.launched(1, 0)
    tsm.succeeded(0)
    assert tsm.failed(1, "b", counts=True) == (0, False)
    assert tsm.failures == [0]
    assert list(tsm.pending) == []


def test_failure_of_unknown_task_is_ignored():
    tsm = make(1)
    assert tsm.failed(42, "a", counts=True) == (None, False)
    assert tsm.failures == [0]
    assert list(tsm.pending) == [0]


def test_a_task_avoids_executors_it_failed_on():
    tsm = make(2)
    launch(tsm, 0, "a")
    tsm.failed(0, "a", counts=True)
    # "a" skips index 0 (it failed there) and takes index 1; 0 stays first in line.
    assert tsm.next_task("a", ALIVE) == 1
    assert list(tsm.pending) == [0]
    assert tsm.next_task("a", ALIVE) is None
    assert tsm.next_task("b", ALIVE) == 0


def test_failed_executor_is_used_when_no_other_is_alive():
    tsm = make(1)
    launch(tsm, 0, "a")
    tsm.failed(0, "a", counts=True)
    assert tsm.next_task("a", ["a"]) == 0


def test_failed_executor_is_used_when_all_others_failed_too():
    tsm = make(1, max_failures=10)
    for task_id, ex in enumerate(ALIVE):
        assert launch(tsm, task_id, ex) == 0
        tsm.failed(task_id, ex, counts=True)
    assert tsm.failed_on == {0: set(ALIVE)}
    assert tsm.next_task("b", ALIVE) == 0


def test_uncounted_failures_do_not_mark_the_executor():
    tsm = make(1)
    launch(tsm, 0, "a")
    tsm.failed(0, "a", counts=False)
    assert tsm.next_task("a", ALIVE) == 0


def test_skipping_keeps_pending_order():
    tsm = make(5)
    for task_id in range(5):
        launch(tsm, task_id, "a")
    for task_id in (3, 1):
        tsm.failed(task_id, "a", counts=True)
    tsm.failed(4, "b", counts=True)
    assert list(tsm.pending) == [4, 1, 3]
    assert tsm.next_task("a", ALIVE) == 4
    assert list(tsm.pending) == [1, 3]
    assert tsm.next_task("b", ALIVE) == 1
    assert list(tsm.pending) == [3]


def test_empty_task_set_is_finished():
    tsm = make(0)
    assert tsm.finished
    assert tsm.next_task("a", ALIVE) is None


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 6), max_failures=st.integers(1, 4),
       script=st.lists(st.tuples(st.sampled_from(ALIVE),
                                 st.sampled_from(["ok", "fail", "lost", "dup"])),
                       max_size=40))
def test_random_runs_keep_invariants(n, max_failures, script):
    """Every index is pending, running, or done, never twice; attempts count launches;
    an abort happens exactly when one index reached max_failures counted failures."""
    tsm = make(n, max_failures)
    task_ids = itertools.count()
    aborted = False
    for ex, outcome in script:
        index = tsm.next_task(ex, ALIVE)
        if index is None:
            assert tsm.zombie or not tsm.pending or all(
                ex in tsm.failed_on.get(i, ()) for i in tsm.pending)
            continue
        tid = next(task_ids)
        tsm.launched(tid, index)
        if outcome == "ok":
            assert tsm.succeeded(tid) == index
        elif outcome == "dup":
            assert tsm.succeeded(tid) == index
            assert tsm.succeeded(tid) is None
        else:
            got, abort = tsm.failed(tid, ex, counts=outcome == "fail")
            assert got == index
            if abort:
                aborted = True
                assert tsm.failures[index] == max_failures
        pending = list(tsm.pending)
        assert len(pending) == len(set(pending))
        done = {i for i in range(n) if tsm.successful[i]}
        assert not (done & set(pending))
        assert not set(tsm.running.values())  # every launch got an outcome
        if not aborted:
            assert sorted(done | set(pending)) == list(range(n))
        assert all(f < max_failures for f in tsm.failures) or aborted
    assert tsm.zombie == (aborted or tsm.finished)
    assert sum(tsm.attempts) == next(task_ids)
