"""A SIGTERMed worker's teardown does not wait on RQ's command thread (the pubsub thread
that takes stop/kill requests)."""

from __future__ import annotations

import threading
from typing import Any

from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from jobs.worker import Worker
from tests.conftest import wait_for


def stopped_after_unsubscribe_reply(worker_class: type[SimpleWorker], r: Any) -> bool:
    """The losing order of RQ's teardown: the thread has read the UNSUBSCRIBE reply (no
    subscription left) before stop() is called. Whether it then ends within 5 s."""
    queue = Queue("stop-test", connection=r, serializer=JSONSerializer)
    worker = worker_class([queue], connection=r, serializer=JSONSerializer)
    worker.subscribe()
    wait_for(lambda: worker.pubsub.subscribed, what="subscribed")
    wait_for(lambda: r.pubsub_numsub(worker.pubsub_channel_name)[0][1] == 1, what="registered")
    worker.pubsub.unsubscribe()
    wait_for(lambda: not worker.pubsub.subscribed, what="the thread read the reply")
    worker.pubsub_thread.stop(timeout=5.0)
    alive = worker.pubsub_thread.is_alive()
    worker.pubsub.close()
    return not alive


def test_worker_command_thread_ends_when_it_read_the_unsubscribe_first(r: Any) -> None:
    assert stopped_after_unsubscribe_reply(Worker, r)


def test_rq_default_command_thread_would_not(r: Any) -> None:
    """The same with RQ's own SimpleWorker (sleep_time=60): still waiting after 5 s. If a
    new RQ fixes this, this test says so, and Worker.subscribe can go."""
    assert not stopped_after_unsubscribe_reply(SimpleWorker, r)


def test_teardown_does_not_wait_forever_on_a_stuck_command_thread(r: Any) -> None:
    """The thread stuck in a wait that never returns (under the chaos run's libfaketime a
    timed Event.wait never does): RQ's unsubscribe() joins it without a timeout, so the
    SIGTERMed worker never exited. Worker's gives up on it (a daemon thread) and ends."""
    queue = Queue("stop-test", connection=r, serializer=JSONSerializer)
    worker = Worker([queue], connection=r, serializer=JSONSerializer)
    worker.subscribe()
    wait_for(lambda: worker.pubsub.subscribed, what="subscribed")
    stuck, never = threading.Event(), threading.Event()

    def get_message(*args: Any, **kwargs: Any) -> None:
        stuck.set()
        never.wait()

    worker.pubsub.get_message = get_message  # type: ignore[method-assign]
    assert stuck.wait(10), "the command thread did not take its next message"
    teardown = threading.Thread(target=worker.unsubscribe, daemon=True)
    teardown.start()
    teardown.join(30)
    try:
        assert not teardown.is_alive(), "unsubscribe() is still joining the stuck thread"
    finally:
        never.set()
