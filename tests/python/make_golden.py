#!/usr/bin/env python3
"""Writes the binary golden vectors of schemas/testdata/ from their .json descriptions.

    python3 tests/python/make_golden.py            # write new vectors
    python3 tests/python/make_golden.py --force    # also overwrite changed ones

Run after adding a description; commit the .bin/.ptdl files (`make
test-python` only checks them, it never writes). The vectors are built by the
reference (Python/C++) protobuf encoder, independent of the Swift code they
check. Existing vectors must never change meaning: add new ones instead (old
bytes must keep decoding the same way forever), so a vector whose bytes would
change is reported and left alone unless --force.
"""

import sys
import tempfile

import golden_support as gs


def main():
    force = "--force" in sys.argv[1:]
    refused = []
    with tempfile.TemporaryDirectory() as tmp:
        pb = gs.compile_schema(tmp)
        for name, desc in gs.descriptions():
            data = gs.encode(pb, desc)
            path = gs.TESTDATA / desc["file"]
            old = path.read_bytes() if path.exists() else None
            if old == data:
                print(f"{desc['file']}: {len(data)} bytes, unchanged")
                continue
            if old is not None and not force:
                refused.append(desc["file"])
                print(f"{desc['file']}: would change ({len(old)} -> {len(data)} bytes); not written")
                continue
            path.write_bytes(data)
            print(f"{desc['file']}: {len(data)} bytes, {'new' if old is None else 'OVERWRITTEN'}")
    if refused:
        sys.exit(f"refused to change existing vectors {refused} (golden vectors never change meaning; --force to overwrite)")


if __name__ == "__main__":
    main()
