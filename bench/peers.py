#!/usr/bin/env python3
"""bench/peers.py NAME - the Python baselines.

For each count N read from stdin, runs benchmark NAME for N operations
(after a short untimed warm-up) and prints the time per operation in
nanoseconds (see bench/harness.h). Each function below does the
same work as the libtaskkit side of its row in bench/*.c: read them side by
side. Pools, queues and pipes are created before the clock starts, as in C.
"""
import multiprocessing as mp
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

FORK = mp.get_context("fork")
WORKERS = os.cpu_count() or 1
MSG = bytes(64)
sink = 0


def target(i):
    global sink
    sink = i


def noop(i=None):
    return i


def timed(op, n):
    """Warm up, then time op(n); returns ns per operation."""
    op(max(1, n // 10))
    t0 = time.perf_counter_ns()
    op(n)
    return (time.perf_counter_ns() - t0) / n


def coding(num, name=None):
    return num + len(name)


def args(n):
    def op(n):
        global sink
        for i in range(n):
            a = (i, "name")
            sink = coding(*a)
    return timed(op, n)


def thread(n):
    def op(n):
        for i in range(n):
            t = threading.Thread(target=target, args=(i,))
            t.start()
            t.join()
    return timed(op, n)


def process(n):
    def op(n):
        for i in range(n):
            p = FORK.Process(target=target, args=(i,))
            p.start()
            p.join()
    return timed(op, n)


def lock(n):
    lk = threading.Lock()

    def op(n):
        for _ in range(n):
            lk.acquire()
            lk.release()
    return timed(op, n)


def lock_mt(n):
    """lock() while another thread is alive (blocked)."""
    gate = threading.Event()
    idle = threading.Thread(target=gate.wait)
    idle.start()
    try:
        return lock(n)
    finally:
        gate.set()
        idle.join()


def counter(n):
    """n increments of a shared counter under a Lock, by 2 threads."""
    lk = threading.Lock()
    box = [0]

    def work(k):
        for _ in range(k):
            with lk:
                box[0] += 1

    def op(n):
        ts = [threading.Thread(target=work, args=(n // 2,)) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return timed(op, n)


_pools = {}


def pooled(kind):
    """One pool per peer, kept across rounds like the C sides' pools."""
    if kind not in _pools:
        _pools[kind] = (ThreadPoolExecutor(max_workers=WORKERS) if kind == "threads"
                        else FORK.Pool(WORKERS))
    return _pools[kind]


def tpe(n):
    ex = pooled("threads")
    return timed(lambda n: wait([ex.submit(noop) for _ in range(n)]), n)


def pool_map(n, chunksize):
    pool = pooled("processes")
    return timed(lambda n: pool.map(noop, range(n), chunksize), n)


def pool_map1(n):
    return pool_map(n, 1)


def pool_map_default(n):
    return pool_map(n, None)


def producer(put, n):
    for _ in range(n + 1):
        put(MSG)


def echo(get, put, n):
    for _ in range(n + 1):
        put(get())


def one_way(n, put, get):
    """A child sends n + 1 messages; the clock starts at the first one."""
    p = FORK.Process(target=producer, args=(put, n))
    p.start()
    get()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        get()
    t = time.perf_counter_ns() - t0
    p.join()
    return t / n


def ping_pong(n, put, get, cput, cget):
    """A child echoes n + 1 messages; the clock starts after the first."""
    p = FORK.Process(target=echo, args=(cget, cput, n))
    p.start()
    put(MSG)
    get()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        put(MSG)
        get()
    t = time.perf_counter_ns() - t0
    p.join()
    return t / n


def queue_oneway(n):
    q = FORK.Queue()
    return one_way(n, q.put, q.get)


def queue_pingpong(n):
    there, back = FORK.Queue(), FORK.Queue()
    return ping_pong(n, there.put, back.get, back.put, there.get)


def pipe_oneway(n):
    r, w = FORK.Pipe(duplex=False)
    return one_way(n, w.send, r.recv)


def pipe_pingpong(n):
    a, b = FORK.Pipe()
    return ping_pong(n, a.send, a.recv, b.send, b.recv)


if __name__ == "__main__":
    bench = globals()[sys.argv[1]]
    for line in sys.stdin:
        print(f"{bench(int(line)):.1f}", flush=True)
