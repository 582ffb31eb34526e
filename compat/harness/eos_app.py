#!/usr/bin/env python3
"""A confluent-kafka consume-transform-produce application (the eos_kill9 scenario).

    eos_app.py BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP TRANSACTIONAL_ID LOGFILE

Reads IN_TOPIC in GROUP with isolation.level=read_committed, writes b"out:" + value
(same key) to OUT_TOPIC inside a transaction that also carries the consumed offsets
(send_offsets_to_transaction), committing every ~50 records. Prints "committed N" after
each commit (N = records in that transaction). Exits 0 once its committed positions
reach the end of every input partition. The scenario SIGKILLs it at random points.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bs, in_topic, out_topic, group, txn_id, logfile = sys.argv[1:7]


def log_cb():
    import logging
    lg = logging.getLogger("eos")
    h = logging.FileHandler(logfile)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    return lg


lg = log_cb()
consumer = Consumer({"bootstrap.servers": bs, "group.id": group, "isolation.level": "read_committed",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "logger": lg})
producer = Producer({"bootstrap.servers": bs, "transactional.id": txn_id, "linger.ms": 5,
                     "transaction.timeout.ms": 30000, "logger": lg})
producer.init_transactions(30)
consumer.subscribe([in_topic])
print("started", flush=True)


def at_end() -> bool:
    asg = consumer.assignment()
    if not asg:
        return False
    committed = consumer.committed(asg, timeout=10)
    parts = {tp.partition for tp in asg}
    md = consumer.list_topics(in_topic, timeout=10).topics[in_topic]
    if parts != set(md.partitions):
        return False
    for tp in committed:
        lo, hi = consumer.get_watermark_offsets(TopicPartition(in_topic, tp.partition), timeout=10)
        if tp.offset < 0 or tp.offset < hi:
            return False
    return True


idle = 0
while True:
    msgs = consumer.consume(num_messages=50, timeout=1.0)
    msgs = [m for m in msgs if m.error() is None]
    if not msgs:
        idle += 1
        if idle % 3 == 0 and at_end():
            print("done", flush=True)
            break
        continue
    idle = 0
    producer.begin_transaction()
    for m in msgs:
        producer.produce(out_topic, key=m.key(), value=b"out:" + m.value())
    producer.poll(0)
    time.sleep(0.2)  # a window for the scenario's SIGKILL to land mid-transaction
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    print(f"committed {len(msgs)}", flush=True)
consumer.close()
