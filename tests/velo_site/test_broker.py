"""The embedded broker: whole messages, each to one consumer, and no worker killed by a bad file.

These talk to the transport through kombu, the way Celery does, on folders of
their own; a producer runs in another process because the torn read kombu's own
transport allows (issue #1551) needs a writer and a reader at the same time.
"""

import logging
import multiprocessing
import os
import time

import pytest
from kombu import Connection

from velo_site.broker import PARTIAL_SUFFIX, Transport

BIG = "x" * 200_000  # large enough that a write is not one atomic syscall's worth


def queue_name(root):
    """A queue per test: kombu remembers declared exchanges per process, not per folder."""
    return f"velo-broker-test-{root.name}"


def broker_options(root):
    folders = {name: root / name for name in ("queue", "processed", "rejected", "control")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "rejected_folder": str(folders["rejected"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
        "polling_interval": 0,
    }


def connect(root, transport=Transport):
    return Connection(transport=transport, transport_options=broker_options(root))


def produce(root, count, transport=Transport):
    with connect(root, transport) as conn:
        queue = conn.SimpleQueue(queue_name(root))
        for n in range(count):
            queue.put({"n": n, "body": BIG})
        queue.close()


def consume(root, expected, timeout=60):
    """Every message taken from the queue until `expected` arrived, and every error met."""
    received, errors = [], []
    deadline = time.monotonic() + timeout
    with connect(root) as conn:
        queue = conn.SimpleQueue(queue_name(root))
        while len(received) < expected and time.monotonic() < deadline:
            try:
                message = queue.get(block=True, timeout=0.5)
            except queue.Empty:
                continue
            except Exception as exc:  # a torn read is what we look for
                errors.append(exc)
                continue
            message.ack()
            received.append(message.payload)
        queue.close()
    return received, errors


def test_a_consumer_never_reads_a_message_still_being_written(tmp_path):
    count = 150
    producer = multiprocessing.get_context("spawn").Process(target=produce, args=(tmp_path, count))
    producer.start()
    try:
        received, errors = consume(tmp_path, count)
    finally:
        producer.join(timeout=60)
    assert errors == []
    assert sorted(m["n"] for m in received) == list(range(count))
    assert all(m["body"] == BIG for m in received)


def test_a_file_being_written_is_neither_delivered_nor_counted(tmp_path):
    options = broker_options(tmp_path)
    in_progress = os.path.join(
        options["data_folder_in"], f"1_abc.{queue_name(tmp_path)}.msg{PARTIAL_SUFFIX}"
    )
    with open(in_progress, "w") as file:
        file.write('{"half": ')
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue(queue_name(tmp_path))
        assert queue.qsize() == 0
        with pytest.raises(queue.Empty):
            queue.get(block=False)
        queue.close()
    assert os.path.exists(in_progress)


def test_an_unreadable_message_file_is_set_aside_and_the_next_one_delivered(tmp_path, caplog):
    options = broker_options(tmp_path)
    # Sorted first, so the consumer meets it before the good message.
    garbage = os.path.join(options["data_folder_in"], f"0_garbage.{queue_name(tmp_path)}.msg")
    with open(garbage, "w") as file:
        file.write("")
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue(queue_name(tmp_path))
        queue.put({"n": 1})
        with caplog.at_level(logging.ERROR, logger="velo_site.broker"):
            message = queue.get(block=False)
        message.ack()
        queue.close()
    assert message.payload == {"n": 1}
    assert not os.path.exists(garbage)
    assert os.listdir(options["rejected_folder"]) == [os.path.basename(garbage)]
    assert "unreadable message file set aside" in caplog.text
    assert options["rejected_folder"] in caplog.text


def take_all(root, out):
    received, _ = consume(root, expected=10**9, timeout=4)
    out.put([m["n"] for m in received])


def test_two_consumers_never_get_the_same_message(tmp_path):
    count = 300
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue(queue_name(tmp_path))
        for n in range(count):
            queue.put({"n": n, "body": "small"})
        queue.close()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    consumers = [context.Process(target=take_all, args=(tmp_path, results)) for _ in range(2)]
    for consumer in consumers:
        consumer.start()
    taken = [results.get(timeout=60) for _ in consumers]
    for consumer in consumers:
        consumer.join(timeout=10)
    assert sorted(taken[0] + taken[1]) == list(range(count))


def test_a_missing_processed_folder_is_an_error_not_an_empty_queue(tmp_path):
    import shutil

    from kombu.exceptions import ChannelError

    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue(queue_name(tmp_path))
        queue.put({"n": 1})
        shutil.rmtree(tmp_path / "processed")
        with pytest.raises(ChannelError, match="processed_folder"):
            queue.get(block=False)
        queue.close()
    assert len(os.listdir(tmp_path / "queue")) == 1  # the message still waits
