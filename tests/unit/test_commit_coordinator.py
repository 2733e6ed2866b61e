"""The output commit coordinator: first committer wins, denial, release on failure; and
the TaskScheduler's answers to executors' AskCommit."""

from __future__ import annotations

import pickle

from core_driver import CoreDriver
from fake_conn import Conn

from asyncspark.errors import CommitDeniedError
from asyncspark.scheduler.commit_coordinator import OutputCommitCoordinator
from asyncspark.scheduler.events import CompletionEvent, TaskSetFailed
from asyncspark.scheduler.speculation import SpeculationConf
from asyncspark.scheduler.stage import ExecutorData, TaskSet
from asyncspark.scheduler.task_core import SPECULATION
from asyncspark.transport.codec import FrameCodec
from asyncspark.transport.messages.control import AskCommit, CommitAnswer
from asyncspark.transport.messages.tasks import FAILED, FINISHED, decode_failure, encode_failure


def test_first_committer_wins_and_others_are_denied():
    c = OutputCommitCoordinator()
    assert c.can_commit(1, 0, task_id=10)
    assert c.can_commit(1, 0, task_id=10)  # asking again: same answer
    assert not c.can_commit(1, 0, task_id=11)
    assert c.authorized(1, 0) == 10
    assert c.can_commit(1, 1, task_id=11)  # another partition
    assert c.can_commit(2, 0, task_id=12)  # another stage


def test_authorization_is_released_when_the_authorized_attempt_fails():
    c = OutputCommitCoordinator()
    assert c.can_commit(1, 0, 10)
    c.task_ended(1, 0, 11, success=False)  # not the holder: nothing changes
    assert c.authorized(1, 0) == 10
    c.task_ended(1, 0, 10, success=False)
    assert c.authorized(1, 0) is None
    assert not c.can_commit(1, 0, 10)  # an ended attempt never commits
    assert c.can_commit(1, 0, 12)


def test_success_keeps_the_authorization_and_stage_end_forgets():
    c = OutputCommitCoordinator()
    assert c.can_commit(1, 0, 10)
    c.task_ended(1, 0, 10, success=True)
    assert not c.can_commit(1, 0, 11)
    c.stage_ended(1)
    assert c.authorized(1, 0) is None


def test_commit_messages_round_trip():
    codec = FrameCodec()
    for msg in (AskCommit(1, 2, 3, 4), CommitAnswer(1, None), CommitAnswer(2, "no")):
        codec.receive_data(codec.send(msg))
        assert codec.next_event() == msg


def test_commit_denied_is_not_a_counted_failure():
    reason = decode_failure(encode_failure(CommitDeniedError("TID 3 is committing it")))
    assert reason.kind == "commit_denied"
    assert not reason.counts


def test_scheduler_answers_commit_requests():
    events: list = []
    ts = CoreDriver(events.append, max_failures=2,
                    speculation=SpeculationConf(quantile=0.5, min_runtime=0.0))
    for eid in ("a", "b"):
        ts.executor_added(ExecutorData(eid, "host", Conn(), 1))
    ts.submit_tasks(TaskSet(4, 0, 0, 4, b"bin", [20, 21]))
    # task 0: partition 20 on a; task 1: partition 21 on b
    assert ts.ask_commit("b", 4, 20, 0) == "task 0 is not running on executor b any more"
    assert "not partition 21" in ts.ask_commit("a", 4, 21, 0)
    payload = pickle.dumps("r")
    ts.clock.t = 1.0
    ts.status_update("a", [[0, FINISHED, len(payload), 10, None, None]], payload)
    ts.clock.t = 10.0
    ts.fire(SPECULATION)
    (copy,) = ts.executors["a"].running  # a speculative copy of partition 21
    assert ts.ask_commit("a", 4, 21, copy) is None  # the copy asks first: it commits
    denied = ts.ask_commit("b", 4, 21, 1)
    assert denied is not None
    assert f"TID {copy} is committing it" in denied
    # the authorized copy fails before finishing: its authorization is released
    failure = encode_failure(OSError("disk full"))
    ts.status_update("a", [[copy, FAILED, len(failure), 10, None, None]], failure)
    assert ts.ask_commit("b", 4, 21, 1) is None
    ts.status_update("b", [[1, FINISHED, len(payload), 10, None, None]], payload)
    done = [e for e in events if type(e) is CompletionEvent and e.success]
    assert sorted(e.partition for e in done) == [20, 21]
    assert not [e for e in events if type(e) is TaskSetFailed]
    assert ts.core.commits.authorized(4, 21) is None  # the stage is done: forgotten
