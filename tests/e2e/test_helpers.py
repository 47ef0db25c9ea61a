"""Self-tests of the e2e harness helpers (no tracker, no clients needed)."""

import pytest

from e2e_helpers import BencodeError, bdecode, bencode, scrape_url_for


def test_bdecode_tracker_response():
    body = b"d8:completei2e10:incompletei0e8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e"
    assert bdecode(body) == {
        b"complete": 2,
        b"incomplete": 0,
        b"interval": 1800,
        b"peers": b"\x7f\x00\x00\x01\x1a\xe1",
    }


def test_bencode_roundtrip():
    value = {b"files": {b"\x00" * 20: {b"complete": 1, b"downloaded": -3, b"incomplete": 0}}, b"l": [b"", 0, []]}
    assert bdecode(bencode(value)) == value


@pytest.mark.parametrize("bad", [b"", b"i01e", b"i-0e", b"ie", b"5:abc", b"d1:ae", b"x", b"i1eX", b"di1ei2ee"])
def test_bdecode_rejects_malformed(bad):
    with pytest.raises((BencodeError, ValueError)):
        bdecode(bad)


@pytest.mark.parametrize(
    "announce, scrape",
    [
        ("http://127.0.0.1:1/announce", "http://127.0.0.1:1/scrape"),
        (
            "http://127.0.0.1:1/0123456789abcdef0123456789abcdef/announce",
            "http://127.0.0.1:1/0123456789abcdef0123456789abcdef/scrape",
        ),
    ],
)
def test_scrape_url_for(announce, scrape):
    assert scrape_url_for(announce) == scrape


def test_scrape_url_requires_announce():
    with pytest.raises(ValueError):
        scrape_url_for("http://127.0.0.1:1/tracker")
