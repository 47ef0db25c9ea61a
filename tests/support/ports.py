"""Ports for everything a test starts.

Every listener a test starts (a tracker's HTTP, UDP and admin endpoints,
BitTorrent clients) gets a port from `free_port`, never a default: a
`make run` on this machine holds 127.0.0.1:6969 (TCP and UDP) and
127.0.0.1:9090, and a test must not collide with it.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"

_HANDED_OUT: set = set()


def free_port(host: str = HOST, both: bool = True) -> int:
    """A port free for TCP (and UDP, if `both`) on `host`, never the same one
    twice in this process (two servers configured before either binds must
    not get the same port)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
        if port in _HANDED_OUT:
            continue
        if both:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port found")


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0
