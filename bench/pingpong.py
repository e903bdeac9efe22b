# What waking another process costs on this machine: a one-byte loopback
# TCP round trip (TCP_NODELAY) between two processes, 5,000 rounds, twice.
#
#   python3 bench/pingpong.py
import os
import socket
import time

ROUNDS = 5000


def echo_forever(listener):
    peer, _ = listener.accept()
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := peer.recv(64):
        peer.sendall(data)
    os._exit(0)


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
if os.fork() == 0:
    echo_forever(listener)
client = socket.create_connection(listener.getsockname())
client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for run in (1, 2):
    latencies = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        client.sendall(b"x")
        client.recv(64)
        latencies.append((time.perf_counter() - started) * 1e6)
    latencies.sort()
    p50, p99 = latencies[ROUNDS // 2], latencies[ROUNDS * 99 // 100]
    print(f"run {run}: round trip p50 {p50:.0f} µs, p99 {p99:.0f} µs")
client.close()
