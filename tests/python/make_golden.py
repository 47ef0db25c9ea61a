#!/usr/bin/env python3
"""Writes the binary golden vectors of schemas/testdata/ from their .json descriptions.

    python3 tests/python/make_golden.py

Run after adding or changing a description; commit the .bin/.ptdl files. The
vectors are built by the reference (Python/C++) protobuf encoder, independent
of the Swift code they check. Existing vectors must never change meaning: add
new ones instead (old bytes must keep decoding the same way forever).
"""

import tempfile

import golden_support as gs


def main():
    with tempfile.TemporaryDirectory() as tmp:
        pb = gs.compile_schema(tmp)
        for name, desc in gs.descriptions():
            data = gs.encode(pb, desc)
            (gs.TESTDATA / desc["file"]).write_bytes(data)
            print(f"{desc['file']}: {len(data)} bytes")


if __name__ == "__main__":
    main()
