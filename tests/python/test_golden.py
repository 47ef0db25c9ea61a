"""Cross-language check of the wire schema's golden vectors (schemas/testdata/).

Compiles schemas/privtrak/v1/*.proto with protoc --python_out into a temp
folder and decodes every binary vector with the reference protobuf runtime,
checking each field against the vector's readable .json description, then
walks the raw wire format by hand and re-encodes to the identical bytes.
Nothing here writes a vector (tests/python/make_golden.py does). The Swift
side (Tests/DeltaWireTests/GoldenVectorTests.swift) checks the same files, so
both languages agree byte for byte.

    python3 -m pytest tests/python
"""

import ipaddress
import struct

import pytest

import golden_support as gs

DELTA_VECTORS = [name for name, desc in gs.descriptions() if desc["type"] == "privtrak.v1.Delta"]
BATCH_VECTORS = [name for name, desc in gs.descriptions() if desc["type"] == "privtrak.v1.DeltaBatch"]
LOG_VECTORS = [name for name, desc in gs.descriptions() if desc["type"].startswith("privtrak FileSink log")]
REGISTRY_VECTORS = [name for name, desc in gs.descriptions() if desc["type"] in gs.REGISTRY_TYPES]

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
    14: ("upload_factor_percent", 0),
    15: ("download_factor_percent", 0),
}

# The registry messages as the schema promises them, written out by hand
# (independent of the generated code): field number -> (name, kind, optional).
# Kinds: "hex" and "string" are length-delimited (wire type 2), "bool",
# "uint" and enums (a dict word -> number) are varints (wire type 0).
STATE = {"active": 0, "pending": 1, "deleted": 2}
ACTION = {"allow": 0, "deny": 1}
REGISTRY_WIRE = {
    "privtrak.v1.RegistryUser": {
        1: ("user_id", "hex", False),
        2: ("passkey", "string", False),
        3: ("disabled", "bool", False),
        4: ("disabled_reason", "string", False),
        5: ("no_leech", "bool", False),
        6: ("upload_factor_percent", "uint", True),
        7: ("download_factor_percent", "uint", True),
    },
    "privtrak.v1.RegistryTorrent": {
        1: ("info_hash", "hex", False),
        2: ("state", STATE, False),
        3: ("reason", "string", False),
        4: ("upload_factor_percent", "uint", True),
        5: ("download_factor_percent", "uint", True),
        6: ("v2_info_hash", "hex", False),
    },
    "privtrak.v1.RegistryToken": {
        1: ("user_id", "hex", False),
        2: ("info_hash", "hex", False),
        3: ("upload_factor_percent", "uint", True),
        4: ("download_factor_percent", "uint", True),
    },
    "privtrak.v1.RegistryGlobal": {
        1: ("upload_factor_percent", "uint", True),
        2: ("download_factor_percent", "uint", True),
    },
    "privtrak.v1.RegistryClientRule": {
        1: ("peer_id_prefix", "hex", False),
        2: ("action", ACTION, False),
        3: ("reason", "string", False),
    },
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
    for factor in ("upload_factor_percent", "download_factor_percent"):
        if factor in d:
            assert msg.HasField(factor)  # 0 included: present, not absent
            assert getattr(msg, factor) == d[factor]
        else:
            assert not msg.HasField(factor)
            assert getattr(msg, factor) == 0  # absent: the reader's default is 100, not the runtime's


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
    assert optional == {"client_ip", "peer_id", "upload_factor_percent", "download_factor_percent"}


@pytest.mark.parametrize("kind", sorted(REGISTRY_WIRE))
def test_registry_schema_shape(pb, kind):
    descriptor = gs.registry_class(pb, kind).DESCRIPTOR
    assert descriptor.full_name == kind
    wire = REGISTRY_WIRE[kind]
    assert {f.number: f.name for f in descriptor.fields} == {n: name for n, (name, _, _) in wire.items()}
    assert {f.name for f in descriptor.fields if f.has_presence} == {name for name, _, opt in wire.values() if opt}
    for field in descriptor.fields:
        _, kind_of_field, _ = wire[field.number]
        if isinstance(kind_of_field, dict):
            prefix = field.enum_type.name.upper() + "_"
            assert {v.name: v.number for v in field.enum_type.values} == {
                prefix + word.upper(): number for word, number in kind_of_field.items()
            }
        else:
            assert field.enum_type is None


def test_every_vector_is_listed():
    described = {desc["file"] for _, desc in gs.descriptions()}
    on_disk = {p.name for p in gs.TESTDATA.iterdir() if p.suffix in (".bin", ".ptdl")}
    assert described == on_disk
    assert len(DELTA_VECTORS) >= 6 and len(BATCH_VECTORS) >= 1 and len(LOG_VECTORS) >= 1
    assert {desc["type"] for name, desc in gs.descriptions() if name in REGISTRY_VECTORS} == set(REGISTRY_WIRE)
    assert len(REGISTRY_VECTORS) >= 7


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


def test_delta_factors_are_explicit_on_the_wire():
    # Field 14 = 200 (tag 0x70, varint c8 01), field 15 = 0 (tag 0x78, 00):
    # an optional 0 is written, unlike a plain proto3 scalar at its default.
    data = read_vector(gs.load("delta_factors.json"))
    assert data.endswith(bytes.fromhex("70c8017800"))
    # Vectors without factors have neither field (old producers; absent = 100).
    for name in DELTA_VECTORS:
        if name != "delta_factors":
            assert not {14, 15} & {n for n, _, _ in raw_fields(read_vector(gs.load(name + ".json")))}


def registry_key(kind, obj):
    """The Kafka record key of a registry value, derived by hand from its ids."""
    if kind == "privtrak.v1.RegistryUser":
        return bytes.fromhex(obj["user_id"])
    if kind == "privtrak.v1.RegistryTorrent":
        # The v1 hash; a v2-only torrent's key is its v2 hash's first 20 bytes.
        return bytes.fromhex(obj["info_hash"] or obj["v2_info_hash"][:40])
    if kind == "privtrak.v1.RegistryToken":
        return bytes.fromhex(obj["user_id"]) + bytes.fromhex(obj["info_hash"])
    if kind == "privtrak.v1.RegistryGlobal":
        return b"global"
    if kind == "privtrak.v1.RegistryClientRule":
        return bytes.fromhex(obj["peer_id_prefix"])
    raise AssertionError(kind)


def registry_default(kind_of_field):
    if isinstance(kind_of_field, dict):
        return next(word for word, number in kind_of_field.items() if number == 0)
    return {"hex": "", "string": "", "bool": False, "uint": 0}[kind_of_field]


def check_raw_registry(kind, data, obj):
    """The raw wire format against the description, walked by hand: canonical
    field order, the promised wire types, every value, and exactly the
    fields that must be on the wire (non-default plain fields, listed
    optional ones, 0 included)."""
    wire = REGISTRY_WIRE[kind]
    fields = raw_fields(data)
    numbers = [number for number, _, _ in fields]
    assert numbers == sorted(set(numbers))
    seen = {}
    for number, wire_type, raw in fields:
        assert number in wire, f"unexpected field {number}"
        name, kind_of_field, _ = wire[number]
        assert wire_type == (2 if kind_of_field in ("hex", "string") else 0), f"{name} has wire type {wire_type}"
        if kind_of_field == "hex":
            seen[name] = raw.hex()
        elif kind_of_field == "string":
            seen[name] = raw.decode("utf-8")
        elif kind_of_field == "bool":
            assert raw in (0, 1)
            seen[name] = bool(raw)
        elif kind_of_field == "uint":
            seen[name] = raw
        else:
            seen[name] = next(word for word, n in kind_of_field.items() if n == raw)
    expected = {}
    for name, kind_of_field, optional in wire.values():
        if optional:
            if name in obj:
                expected[name] = obj[name]
        else:
            # Plain proto3 fields are listed in the description even at their
            # default (like the deltas), and absent on the wire then.
            assert name in obj, f"description lacks {name}"
            if obj[name] != registry_default(kind_of_field):
                expected[name] = obj[name]
    assert seen == expected


@pytest.mark.parametrize("name", REGISTRY_VECTORS)
def test_registry_vector(pb, name):
    desc = gs.load(name + ".json")
    kind = desc["type"]
    obj_key, topic = gs.REGISTRY_TYPES[kind]
    obj = desc[obj_key]
    wire = REGISTRY_WIRE[kind]
    assert set(obj) <= {field_name for field_name, _, _ in wire.values()}
    data = read_vector(desc)
    msg = gs.registry_class(pb, kind).FromString(data)
    # Decoded with the reference runtime, field by field.
    for field in msg.DESCRIPTOR.fields:
        _, kind_of_field, optional = wire[field.number]
        value = getattr(msg, field.name)
        if optional and field.name not in obj:
            assert not msg.HasField(field.name)
            continue
        if optional:
            assert msg.HasField(field.name)
        if kind_of_field == "hex":
            value = value.hex()
        elif isinstance(kind_of_field, dict):
            value = field.enum_type.values_by_number[value].name.removeprefix(field.enum_type.name.upper() + "_").lower()
        assert value == obj[field.name], field.name
    check_raw_registry(kind, data, obj)
    # Ids of the right size, and the record key the vector names is the one
    # its ids give (the tracker rejects a value whose id disagrees with its key).
    for field_name, size in (("user_id", 16), ("info_hash", 20), ("v2_info_hash", 32)):
        if obj.get(field_name):
            assert len(bytes.fromhex(obj[field_name])) == size
    if "peer_id_prefix" in obj:
        assert 1 <= len(bytes.fromhex(obj["peer_id_prefix"])) <= 20
    assert desc["topic"] == topic
    assert bytes.fromhex(desc["key"]) == registry_key(kind, obj)
    # Nothing unknown or lost: re-encoding reproduces the bytes, and so does
    # encoding the description from scratch.
    assert msg.SerializeToString(deterministic=True) == data
    assert gs.encode(pb, desc) == data


def test_registry_optional_zero_differs_from_absent(pb):
    # Freeleech (download 0) must survive the wire as a value, not vanish
    # into "absent = no factor".
    data = read_vector(gs.load("registry_torrent_freeleech.json"))
    assert raw_fields(data)[-1] == (5, 0, 0)
    msg = pb.RegistryTorrent.FromString(data)
    assert msg.HasField("download_factor_percent") and not msg.HasField("upload_factor_percent")


def test_registry_hybrid_and_v2_only_torrents(pb):
    # A hybrid names both hashes; a v2-only torrent leaves field 1 out and
    # is keyed by the first 20 bytes of its v2 hash (what its announces carry).
    hybrid = gs.load("registry_torrent_hybrid.json")
    fields = {n: raw for n, _, raw in raw_fields(read_vector(hybrid))}
    assert len(fields[1]) == 20 and len(fields[6]) == 32 and fields[6][:20] != fields[1]
    v2_only = gs.load("registry_torrent_v2_only.json")
    fields = {n: raw for n, _, raw in raw_fields(read_vector(v2_only))}
    assert 1 not in fields and len(fields[6]) == 32
    assert bytes.fromhex(v2_only["key"]) == fields[6][:20]


def test_decoder_rejects_truncated_vector(pb):
    data = read_vector(gs.load("delta_full.json"))
    with pytest.raises(Exception):
        pb.Delta.FromString(data[:-3])
