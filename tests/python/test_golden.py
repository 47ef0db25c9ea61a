"""Cross-language check of the wire schema's golden vectors (schemas/testdata/).

Compiles schemas/privtrak/v1/*.proto with protoc --python_out into a temp
folder and decodes every binary vector with the reference protobuf runtime,
checking each field against the vector's readable .json description. The
Swift side (Tests/DeltaWireTests/GoldenVectorTests.swift) checks the same
files, so both languages agree byte for byte.

    python3 -m pytest tests/python
"""

import ipaddress
import struct

import pytest

import golden_support as gs

DELTA_VECTORS = [name for name, desc in gs.descriptions() if desc["type"] == "privtrak.v1.Delta"]
BATCH_VECTORS = [name for name, desc in gs.descriptions() if desc["type"] == "privtrak.v1.DeltaBatch"]
LOG_VECTORS = [name for name, desc in gs.descriptions() if desc["type"].startswith("privtrak FileSink log")]

# Field number -> (name, protobuf wire type) as the schema promises them.
DELTA_WIRE = {
    1: ("user_id", 2),
    2: ("info_hash", 2),
    3: ("uploaded", 0),
    4: ("downloaded", 0),
    5: ("event", 0),
    6: ("reported_at_ms", 0),
    7: ("seeding", 0),
    8: ("interval_s", 0),
    9: ("reset", 0),
    10: ("instance", 1),
    11: ("sequence", 0),
    12: ("client_ip", 2),
    13: ("peer_id", 2),
}


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    return gs.compile_schema(tmp_path_factory.mktemp("proto"))


def read_vector(desc):
    return (gs.TESTDATA / desc["file"]).read_bytes()


def check_delta(pb, msg, d):
    """Every field of a decoded Delta against its description."""
    assert msg.user_id.hex() == d["user_id"] and len(msg.user_id) == 16
    assert msg.info_hash.hex() == d["info_hash"] and len(msg.info_hash) == 20
    assert msg.uploaded == d["uploaded"]
    assert msg.downloaded == d["downloaded"]
    assert pb.Delta.Event.Name(msg.event) == "EVENT_" + d["event"].upper()
    assert msg.reported_at_ms == d["reported_at_ms"]
    assert msg.seeding is d["seeding"]
    assert msg.interval_s == d["interval_s"]
    assert msg.reset is d["reset"]
    assert msg.instance == int(d["instance"], 16)
    assert msg.sequence == d["sequence"]
    if "client_ip" in d:
        assert msg.HasField("client_ip")
        assert ipaddress.ip_address(msg.client_ip) == ipaddress.ip_address(d["client_ip"])
    else:
        assert not msg.HasField("client_ip")
    if "peer_id" in d:
        assert msg.HasField("peer_id")
        assert msg.peer_id.hex() == d["peer_id"]
    else:
        assert not msg.HasField("peer_id")


def read_varint(data, pos):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def raw_fields(data):
    """(field number, wire type, raw value) of a message, walked by hand (no protobuf library)."""
    fields, pos = [], 0
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.append((number, wire, value))
    assert pos == len(data)
    return fields


def check_raw_delta(data):
    """Canonical encoding: fields in number order, each with the wire type the schema promises."""
    fields = raw_fields(data)
    numbers = [number for number, _, _ in fields]
    assert numbers == sorted(set(numbers))
    for number, wire, _ in fields:
        assert number in DELTA_WIRE, f"unexpected field {number}"
        assert wire == DELTA_WIRE[number][1], f"field {DELTA_WIRE[number][0]} has wire type {wire}"
        assert number <= 15  # one-byte tags


def test_schema_shape(pb):
    fields = {f.name: f.number for f in pb.Delta.DESCRIPTOR.fields}
    assert fields == {name: number for number, (name, _) in DELTA_WIRE.items()}
    assert pb.Delta.DESCRIPTOR.full_name == "privtrak.v1.Delta"
    assert pb.DeltaBatch.DESCRIPTOR.full_name == "privtrak.v1.DeltaBatch"
    # Same numbers as Swift's DeltaEvent raw values.
    assert {v.name: v.number for v in pb.Delta.Event.DESCRIPTOR.values} == {
        "EVENT_NONE": 0,
        "EVENT_STARTED": 1,
        "EVENT_COMPLETED": 2,
        "EVENT_STOPPED": 3,
        "EVENT_EXPIRED": 4,
    }
    optional = {f.name for f in pb.Delta.DESCRIPTOR.fields if f.has_presence and f.message_type is None}
    assert optional == {"client_ip", "peer_id"}


def test_every_vector_is_listed():
    described = {desc["file"] for _, desc in gs.descriptions()}
    on_disk = {p.name for p in gs.TESTDATA.iterdir() if p.suffix in (".bin", ".ptdl")}
    assert described == on_disk
    assert len(DELTA_VECTORS) >= 5 and len(BATCH_VECTORS) >= 1 and len(LOG_VECTORS) >= 1


@pytest.mark.parametrize("name", DELTA_VECTORS)
def test_delta_vector(pb, name):
    desc = gs.load(name + ".json")
    data = read_vector(desc)
    msg = pb.Delta.FromString(data)
    check_delta(pb, msg, desc["delta"])
    check_raw_delta(data)
    # Nothing unknown or lost: re-encoding reproduces the bytes, and so does
    # encoding the description from scratch.
    assert msg.SerializeToString(deterministic=True) == data
    assert gs.encode(pb, desc) == data


@pytest.mark.parametrize("name", BATCH_VECTORS)
def test_batch_vector(pb, name):
    desc = gs.load(name + ".json")
    data = read_vector(desc)
    msg = pb.DeltaBatch.FromString(data)
    assert len(msg.deltas) == len(desc["deltas"])
    for decoded, expected in zip(msg.deltas, desc["deltas"]):
        check_delta(pb, decoded, expected)
    assert msg.producer_instance == int(desc["producer_instance"], 16)
    assert msg.sealed_at_ms == desc["sealed_at_ms"]
    for number, wire, value in raw_fields(data):
        if number == 1:
            assert wire == 2
            check_raw_delta(value)
        else:
            assert (number, wire) in ((2, 1), (3, 0))
    assert msg.SerializeToString(deterministic=True) == data
    assert gs.encode(pb, desc) == data


def test_batch_has_ipv6_and_ipv4_clients(pb):
    msg = pb.DeltaBatch.FromString(read_vector(gs.load("batch_three.json")))
    sizes = [len(d.client_ip) if d.HasField("client_ip") else None for d in msg.deltas]
    assert sizes == [16, 4, None]


@pytest.mark.parametrize("name", LOG_VECTORS)
def test_filesink_log_vector(pb, name):
    desc = gs.load(name + ".json")
    data = read_vector(desc)
    assert data[:4] == gs.LOG_MAGIC
    assert struct.unpack_from("<I", data, 4)[0] == gs.LOG_VERSION
    pos, records = 8, []
    while pos < len(data):
        length, crc = struct.unpack_from("<II", data, pos)
        payload = data[pos + 8 : pos + 8 + length]
        assert len(payload) == length
        assert gs.crc32c(payload) == crc
        records.append(pb.DeltaBatch.FromString(payload))
        pos += 8 + length
    assert pos == len(data)
    assert len(records) == len(desc["records"])
    for batch, expected in zip(records, desc["records"]):
        assert batch.producer_instance == int(expected["producer_instance"], 16)
        assert batch.sealed_at_ms == 0
        deltas = gs.log_record_deltas(expected)
        assert len(batch.deltas) == len(deltas)
        for decoded, d in zip(batch.deltas, deltas):
            check_delta(pb, decoded, d)
    assert gs.encode(pb, desc) == data


def test_crc32c_known_answer():
    assert gs.crc32c(b"123456789") == 0xE3069283
    assert gs.crc32c(b"") == 0


def test_decoder_rejects_truncated_vector(pb):
    data = read_vector(gs.load("delta_full.json"))
    with pytest.raises(Exception):
        pb.Delta.FromString(data[:-3])
