"""Shared helpers for the golden-vector generator and tests.

The wire schema is compiled with the system protoc into a temporary folder
(nothing generated is committed for Python); descriptions are the readable
.json files next to the binary vectors in schemas/testdata/.
"""

import importlib
import ipaddress
import json
import pathlib
import struct
import subprocess
import sys
import types

REPO = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
TESTDATA = SCHEMAS / "testdata"

LOG_MAGIC = b"PTDL"
LOG_VERSION = 1


def compile_schema(out_dir):
    """Runs protoc --python_out for every schema file and returns a namespace
    holding every top-level message class (pb.Delta, pb.DeltaBatch,
    pb.RegistryUser, ...)."""
    protos = sorted(str(p.relative_to(SCHEMAS)) for p in SCHEMAS.rglob("*.proto"))
    subprocess.run(
        ["protoc", f"--proto_path={SCHEMAS}", f"--python_out={out_dir}", *protos],
        check=True,
    )
    namespace = types.SimpleNamespace()
    sys.path.insert(0, str(out_dir))
    try:
        for proto in protos:
            module = importlib.import_module(proto[: -len(".proto")].replace("/", ".") + "_pb2")
            for name in module.DESCRIPTOR.message_types_by_name:
                assert not hasattr(namespace, name), f"message {name} defined twice"
                setattr(namespace, name, getattr(module, name))
    finally:
        sys.path.remove(str(out_dir))
    return namespace


def descriptions():
    """(name, description) of every vector, sorted by name."""
    return [(p.stem, json.loads(p.read_text())) for p in sorted(TESTDATA.glob("*.json"))]


def load(name):
    return json.loads((TESTDATA / name).read_text())


def event_value(pb, word):
    return pb.Delta.Event.Value("EVENT_" + word.upper())


def delta_message(pb, d):
    """A Delta message with the fields of description object `d`."""
    msg = pb.Delta(
        user_id=bytes.fromhex(d["user_id"]),
        info_hash=bytes.fromhex(d["info_hash"]),
        uploaded=d["uploaded"],
        downloaded=d["downloaded"],
        event=event_value(pb, d["event"]),
        reported_at_ms=d["reported_at_ms"],
        seeding=d["seeding"],
        interval_s=d["interval_s"],
        reset=d["reset"],
        instance=int(d["instance"], 16),
        sequence=d["sequence"],
    )
    if "client_ip" in d:
        msg.client_ip = ipaddress.ip_address(d["client_ip"]).packed
    if "peer_id" in d:
        msg.peer_id = bytes.fromhex(d["peer_id"])
    for factor in ("upload_factor_percent", "download_factor_percent"):
        if factor in d:
            setattr(msg, factor, d[factor])
    return msg


def batch_message(pb, desc):
    msg = pb.DeltaBatch(
        producer_instance=int(desc.get("producer_instance", "0"), 16),
        sealed_at_ms=desc.get("sealed_at_ms", 0),
    )
    for d in desc["deltas"]:
        msg.deltas.append(delta_message(pb, d))
    return msg


def log_record_deltas(record):
    """The delta descriptions of one deltalog record (taken from other vectors)."""
    deltas = []
    for name in record["deltas_from"]:
        desc = load(name)
        deltas.extend(desc["deltas"] if "deltas" in desc else [desc["delta"]])
    return deltas


def log_file(pb, desc):
    """The bytes of a FileSink log described by `desc`."""
    out = bytearray(LOG_MAGIC + struct.pack("<I", LOG_VERSION))
    for record in desc["records"]:
        batch = batch_message(pb, {"producer_instance": record["producer_instance"], "deltas": log_record_deltas(record)})
        payload = batch.SerializeToString(deterministic=True)
        out += struct.pack("<II", len(payload), crc32c(payload)) + payload
    return bytes(out)


# Registry vector type -> (the description key of its object, its topic).
REGISTRY_TYPES = {
    "privtrak.v1.RegistryUser": ("user", "privtrak.registry.users"),
    "privtrak.v1.RegistryTorrent": ("torrent", "privtrak.registry.torrents"),
    "privtrak.v1.RegistryToken": ("token", "privtrak.registry.tokens"),
    "privtrak.v1.RegistryGlobal": ("global", "privtrak.registry.global"),
    "privtrak.v1.RegistryClientRule": ("client_rule", "privtrak.registry.clients"),
}


def registry_class(pb, kind):
    return getattr(pb, kind.rsplit(".", 1)[1])


def registry_message(pb, kind, obj):
    """A registry message with the fields of description object `obj`: bytes
    fields in hex, enum values as the lower-case word after the enum's name
    (state "pending" = STATE_PENDING), optional fields only when listed."""
    cls = registry_class(pb, kind)
    fields = cls.DESCRIPTOR.fields_by_name
    unknown = set(obj) - set(fields)
    if unknown:
        raise ValueError(f"{kind} has no fields {sorted(unknown)}")
    msg = cls()
    for name, value in obj.items():
        field = fields[name]
        if field.type == field.TYPE_BYTES:
            value = bytes.fromhex(value)
        elif field.enum_type is not None:
            value = field.enum_type.values_by_name[field.enum_type.name.upper() + "_" + value.upper()].number
        setattr(msg, name, value)
    return msg


def encode(pb, desc):
    """The expected bytes of a vector, built from its description alone."""
    kind = desc["type"]
    if kind == "privtrak.v1.Delta":
        return delta_message(pb, desc["delta"]).SerializeToString(deterministic=True)
    if kind == "privtrak.v1.DeltaBatch":
        return batch_message(pb, desc).SerializeToString(deterministic=True)
    if kind.startswith("privtrak FileSink log"):
        return log_file(pb, desc)
    if kind in REGISTRY_TYPES:
        return registry_message(pb, kind, desc[REGISTRY_TYPES[kind][0]]).SerializeToString(deterministic=True)
    raise ValueError(f"unknown vector type {kind}")


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli, reflected, init and final xor 0xffffffff)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
