#!/usr/bin/env python3
"""A userspace WAN line between two interfaces: every Ethernet frame that arrives on one leaves on the other after a
one-way delay +- jitter, and IPv4 frames are dropped with a given probability. The namespace lab puts it on each NAT's
WAN link (src/lab/wan-link.ts), because the lab's kernel has no netem.

Usage: wan-link.py <if-a> <if-b> <delay-ms> <jitter-ms> <loss-percent> [seed]

- Delay and loss apply to both directions, independently. Jitter is uniform in [-jitter, +jitter] (never below 0 ms
  in total), and never reorders a direction: a frame leaves no earlier than the one before it (like a real link,
  unlike netem's default).
- Loss drops IPv4 frames only (the WAN traffic); ARP, which is link-local, is delayed but never dropped.
- Frames are read and written through AF_PACKET sockets with virtio-net headers, so checksums that the sending veth
  left to "hardware" are completed by the kernel when the frame is written out again.
- Prints "ready" on stdout once both sockets are bound; runs until killed. Needs CAP_NET_RAW (root).
"""
import os
import random
import select
import socket
import sys
import time
from collections import deque

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
VNET_HDR_LEN = 10
ETHERTYPE_AT = VNET_HDR_LEN + 12
IPV4 = b'\x08\x00'
BUFFER_BYTES = 4 * 1024 * 1024
MAX_FRAME = 65536 + VNET_HDR_LEN


def usage(message):
    sys.stderr.write(f'wan-link.py: {message}\nusage: wan-link.py <if-a> <if-b> <delay-ms> <jitter-ms> <loss-percent> [seed]\n')
    sys.exit(2)


def number(text, name, low, high):
    try:
        value = float(text)
    except ValueError:
        usage(f'{name} must be a number, got {text!r}')
    if not low <= value <= high:
        usage(f'{name} must be {low}..{high}, got {text}')
    return value


def open_socket(ifname):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER_BYTES)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER_BYTES)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def main():
    if len(sys.argv) not in (6, 7):
        usage('wrong number of arguments')
    if_a, if_b = sys.argv[1], sys.argv[2]
    delay = number(sys.argv[3], 'delay-ms', 0, 60_000) / 1000
    jitter = number(sys.argv[4], 'jitter-ms', 0, 60_000) / 1000
    loss = number(sys.argv[5], 'loss-percent', 0, 100) / 100
    rng = random.Random(int(sys.argv[6]) if len(sys.argv) == 7 else None)

    socks = {if_a: open_socket(if_a), if_b: open_socket(if_b)}
    other = {if_a: if_b, if_b: if_a}
    by_fd = {s.fileno(): name for name, s in socks.items()}
    # frames waiting to leave through each interface, as (departure time, frame), departure times non-decreasing
    queues = {if_a: deque(), if_b: deque()}
    last_departure = {if_a: 0.0, if_b: 0.0}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    sys.stdout.write('ready\n')
    sys.stdout.flush()

    while True:
        now = time.monotonic()
        due = [q[0][0] for q in queues.values() if q]
        timeout = None if not due else max(0, int((min(due) - now) * 1000 + 0.999))
        for fd, _ in poller.poll(timeout):
            src = by_fd[fd]
            out = other[src]
            sock = socks[src]
            now = time.monotonic()
            while True:
                try:
                    frame, addr = sock.recvfrom(MAX_FRAME)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own writes, seen again on the way out
                if loss > 0 and frame[ETHERTYPE_AT:ETHERTYPE_AT + 2] == IPV4 and rng.random() < loss:
                    continue
                departure = now + delay + (rng.uniform(-jitter, jitter) if jitter > 0 else 0)
                departure = max(departure, now, last_departure[out])
                last_departure[out] = departure
                queues[out].append((departure, frame))
        now = time.monotonic()
        for name, queue in queues.items():
            sock = socks[name]
            while queue and queue[0][0] <= now:
                _, frame = queue.popleft()
                try:
                    sock.send(frame)
                except (BlockingIOError, OSError):
                    pass  # a full device queue drops the frame, as a congested link would


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        pass
    except OSError as err:
        sys.stderr.write(f'wan-link.py: {err}\n')
        sys.exit(1)
