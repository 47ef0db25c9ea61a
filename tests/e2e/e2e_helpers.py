"""Helpers for the end-to-end tests with real BitTorrent clients.

Tracker-agnostic: nothing here knows whether the tracker under test is
privtrak or opentracker. Everything talks to it only through the wire
protocols (HTTP announce/scrape, UDP BEP 15 connect) and announce URLs, which
are always parameters so that a passkey path (/<32 hex>/announce) can be used.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import struct
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional, Tuple

# --------------------------------------------------------------------------
# bencode (tiny, strict enough for tracker responses)
# --------------------------------------------------------------------------


class BencodeError(ValueError):
    pass


def bdecode(data: bytes) -> Any:
    """Decode one bencoded value that must span all of `data`.

    Byte strings stay `bytes`; dictionary keys are `bytes` too.
    """
    value, end = _bdecode_at(data, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end} of {len(data)}")
    return value


def _bdecode_at(data: bytes, i: int) -> Tuple[Any, int]:
    if i >= len(data):
        raise BencodeError("unexpected end of data")
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        text = data[i + 1:end]
        if not text or text == b"-0" or (text.lstrip(b"-").startswith(b"0") and text.lstrip(b"-") != b"0"):
            raise BencodeError(f"bad integer {text!r} at offset {i}")
        return int(text), end + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            item, i = _bdecode_at(data, i)
            out.append(item)
        return out, i + 1
    if c == b"d":
        i += 1
        out_d = {}
        while data[i:i + 1] != b"e":
            key, i = _bdecode_at(data, i)
            if not isinstance(key, bytes):
                raise BencodeError(f"non-string dict key at offset {i}")
            out_d[key], i = _bdecode_at(data, i)
        return out_d, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        start = colon + 1
        if start + n > len(data):
            raise BencodeError("string runs past end of data")
        return data[start:start + n], start + n
    raise BencodeError(f"unexpected byte {c!r} at offset {i}")


def bencode(value: Any) -> bytes:
    if isinstance(value, bool):
        raise TypeError("bool is not bencodable")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------


def sha256_file(path: os.PathLike) -> Optional[str]:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                h.update(chunk)
        return h.hexdigest()
    except FileNotFoundError:
        return None


def write_random_file(path: os.PathLike, size: int) -> str:
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# tracker protocol clients (used for readiness and for observing the swarm)
# --------------------------------------------------------------------------


def scrape_url_for(announce_url: str) -> str:
    """BEP 48 convention: replace the last path component 'announce' by 'scrape'.

    Works for http://h:p/announce and http://h:p/<passkey>/announce.
    """
    parts = urllib.parse.urlsplit(announce_url)
    head, sep, last = parts.path.rpartition("/")
    if last != "announce":
        raise ValueError(f"announce URL {announce_url!r} does not end in /announce; cannot derive scrape URL")
    return urllib.parse.urlunsplit(parts._replace(path=f"{head}{sep}scrape"))


def http_get(url: str, timeout: float = 2.0) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "privtrak-e2e/1"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        # Trackers answer errors with a bencoded body, sometimes with a non-200 status.
        return e.read()


def _bdecode_body(url: str, body: bytes) -> Any:
    try:
        return bdecode(body)
    except (BencodeError, ValueError) as exc:
        raise BencodeError(f"GET {url} returned non-bencoded data ({exc}): {body[:120]!r}") from None


def http_scrape_response(announce_url: str, info_hash: bytes, timeout: float = 2.0) -> dict:
    """Scrape one info-hash over HTTP; returns the decoded response dict as it
    is (b"files", or b"failure reason")."""
    url = scrape_url_for(announce_url)
    url += ("&" if "?" in url else "?") + "info_hash=" + urllib.parse.quote_from_bytes(info_hash)
    resp = _bdecode_body(url, http_get(url, timeout=timeout))
    if not isinstance(resp, dict):
        raise BencodeError(f"scrape response is not a dict: {resp!r:.200}")
    return resp


def http_scrape(announce_url: str, info_hash: bytes, timeout: float = 2.0) -> dict:
    """Scrape one info-hash over HTTP. Returns {'complete','incomplete','downloaded'}
    (downloaded may be absent), all zero if the tracker does not know the torrent.
    """
    resp = http_scrape_response(announce_url, info_hash, timeout=timeout)
    if b"failure reason" in resp:
        raise AssertionError(f"scrape failed: {resp[b'failure reason'].decode(errors='replace')}")
    files = resp.get(b"files", {})
    entry = files.get(info_hash, {})
    counts = {k.decode(): v for k, v in entry.items() if isinstance(v, int)}
    counts.setdefault("complete", 0)
    counts.setdefault("incomplete", 0)
    return counts


def http_announce(
    announce_url: str,
    info_hash: bytes,
    peer_id: bytes = b"-PE0001-e2eprobe0000",
    port: int = 1,
    left: int = 0,
    event: Optional[str] = "stopped",
    timeout: float = 2.0,
    uploaded: int = 0,
    downloaded: int = 0,
) -> dict:
    """One raw HTTP announce; returns the decoded response dict (a refusal
    is a dict with b"failure reason").

    The default (event=stopped) is a probe that never adds a peer to a swarm.
    """
    q = {
        "info_hash": info_hash,
        "peer_id": peer_id,
        "port": str(port),
        "uploaded": str(uploaded),
        "downloaded": str(downloaded),
        "left": str(left),
        "compact": "1",
        "numwant": "0",
    }
    if event:
        q["event"] = event
    qs = "&".join(f"{k}={urllib.parse.quote_from_bytes(v if isinstance(v, bytes) else v.encode())}" for k, v in q.items())
    url = announce_url + ("&" if "?" in announce_url else "?") + qs
    resp = _bdecode_body(url, http_get(url, timeout=timeout))
    if not isinstance(resp, dict):
        raise BencodeError(f"announce response is not a dict: {resp!r}")
    return resp


UDP_PROTOCOL_ID = 0x41727101980


def udp_connect(host: str, port: int, timeout: float = 1.0, sock: Optional[socket.socket] = None) -> int:
    """BEP 15 connect (on `sock`, or a socket of its own); returns the connection id."""
    tid = random.getrandbits(32)
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(struct.pack(">QII", UDP_PROTOCOL_ID, 0, tid), (host, port))
        data, _ = s.recvfrom(2048)
    finally:
        if sock is None:
            s.close()
    if len(data) < 16:
        raise AssertionError(f"short UDP connect response: {data!r}")
    action, rtid, conn_id = struct.unpack(">IIQ", data[:16])
    if rtid != tid or action != 0:
        raise AssertionError(f"bad UDP connect response action={action} tid={rtid:#x} (sent {tid:#x})")
    return conn_id


UDP_EVENTS = {None: 0, "completed": 1, "started": 2, "stopped": 3}


def udp_announce(
    host: str,
    port: int,
    info_hash: bytes,
    url_path: str = "/announce",
    peer_id: bytes = b"-PE0001-e2eprobe0000",
    peer_port: int = 1,
    left: int = 0,
    event: Optional[str] = "stopped",
    uploaded: int = 0,
    downloaded: int = 0,
    timeout: float = 2.0,
) -> dict:
    """One BEP 15 connect + announce, with `url_path` (e.g. /<passkey>/announce)
    as BEP 41 URL data. Returns a dict shaped like an HTTP announce response:
    {b"interval", b"incomplete", b"complete", b"peers"}, or {b"failure reason"}
    for a BEP 15 error reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # The connection id is valid for the address it was issued to: the
        # announce goes out of the same socket.
        conn_id = udp_connect(host, port, timeout=timeout, sock=s)
        tid = random.getrandbits(32)
        packet = struct.pack(">QII20s20sQQQIIIiH", conn_id, 1, tid, info_hash, peer_id, downloaded, left,
                             uploaded, UDP_EVENTS[event], 0, random.getrandbits(32), 0, peer_port)
        path = url_path.encode()
        for i in range(0, len(path), 255):
            chunk = path[i:i + 255]
            packet += bytes([2, len(chunk)]) + chunk
        packet += b"\x00"
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        while True:
            data, _ = s.recvfrom(4096)
            if len(data) >= 8 and struct.unpack(">I", data[4:8])[0] == tid:
                break
    action = struct.unpack(">I", data[:4])[0]
    if action == 3:
        return {b"failure reason": data[8:]}
    if action != 1 or len(data) < 20:
        raise AssertionError(f"bad UDP announce response action={action} len={len(data)}: {data[:40]!r}")
    interval, leechers, seeders = struct.unpack(">III", data[8:20])
    return {b"interval": interval, b"incomplete": leechers, b"complete": seeders, b"peers": data[20:]}


def info_hash_hex(h: bytes) -> str:
    return h.hex()
