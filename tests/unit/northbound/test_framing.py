"""Unit tests for northbound.framing (RFC 6242)."""

from __future__ import annotations

import pytest

from northbound.framing import EOM, SEND_CHUNK_SIZE, Framer, FramingError

HELLO = b'<?xml version="1.0"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>'
RPC = b'<rpc message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><get/></rpc>'


def chunked() -> Framer:
    f = Framer()
    f.switch_to_chunked()
    return f


def test_eom_single_message() -> None:
    f = Framer()
    assert f.feed(RPC + EOM) == [RPC]
    assert f.buffered == 0


def test_eom_encode_roundtrip() -> None:
    f = Framer()
    assert f.encode(RPC) == RPC + EOM
    assert Framer().feed(f.encode(RPC)) == [RPC]


def test_eom_multiple_messages_one_feed() -> None:
    f = Framer()
    assert f.feed(HELLO + EOM + RPC + EOM + b"<rp") == [HELLO, RPC]
    assert f.feed(b"c/>" + EOM) == [b"<rpc/>"]


def test_eom_whitespace_between_messages_ignored() -> None:
    f = Framer()
    assert f.feed(b"\n" + RPC + EOM + b"\r\n  " + EOM + b"\n" + RPC + b"\n" + EOM) == [RPC, RPC]


@pytest.mark.parametrize("split", range(1, len(RPC + EOM)))
def test_eom_split_at_every_byte(split: int) -> None:
    data = RPC + EOM + HELLO + EOM
    f = Framer()
    out = f.feed(data[:split]) + f.feed(data[split:])
    assert out == [RPC, HELLO]


def test_eom_byte_by_byte() -> None:
    f = Framer()
    out: list[bytes] = []
    for b in RPC + EOM + RPC + EOM:
        out += f.feed(bytes([b]))
    assert out == [RPC, RPC]


def test_eom_limit_then_switch() -> None:
    f = Framer()
    data = HELLO + EOM + chunked().encode(RPC)
    assert f.feed(data, limit=1) == [HELLO]
    f.switch_to_chunked()
    assert f.chunked
    assert f.feed(b"") == [RPC]


def test_eom_max_size() -> None:
    f = Framer(max_message_size=10)
    assert f.feed(b"0123456789" + EOM) == [b"0123456789"]
    with pytest.raises(FramingError):
        Framer(max_message_size=10).feed(b"x" * 11 + EOM)
    f = Framer(max_message_size=10)
    with pytest.raises(FramingError):
        for _ in range(5):
            f.feed(b"xxxx")


def test_chunked_encode_roundtrip() -> None:
    enc = chunked().encode(RPC)
    assert enc == b"\n#%d\n" % len(RPC) + RPC + b"\n##\n"
    assert chunked().feed(enc) == [RPC]
    with pytest.raises(ValueError):
        chunked().encode(b"")


def test_a_large_message_is_sent_in_small_chunks() -> None:
    """A reply of several MB goes out as chunks of at most SEND_CHUNK_SIZE (a client that
    rescans its buffer for each read does quadratic work on one big chunk), and decodes back."""
    msg = b"<rpc-reply>" + b"x" * (3 * SEND_CHUNK_SIZE + 5) + b"</rpc-reply>"
    enc = chunked().encode(msg)
    sizes, rest = [], enc
    while rest != b"\n##\n":
        header, _, rest = rest[2:].partition(b"\n")
        sizes.append(int(header))
        rest = rest[sizes[-1]:]
    assert sizes == [SEND_CHUNK_SIZE] * 3 + [len(msg) - 3 * SEND_CHUNK_SIZE]
    assert chunked().feed(enc) == [msg]
    exact = b"y" * SEND_CHUNK_SIZE
    assert chunked().encode(exact) == b"\n#%d\n" % SEND_CHUNK_SIZE + exact + b"\n##\n"


def test_chunked_multi_chunk_message() -> None:
    parts = [b"<rpc", b' message-id="102"', b">", b"</rpc>"]
    data = b"".join(b"\n#%d\n" % len(p) + p for p in parts) + b"\n##\n"
    assert chunked().feed(data) == [b'<rpc message-id="102"></rpc>']


def test_chunked_rfc6242_example() -> None:
    msg = (
        b'<rpc message-id="102"\n     xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">\n'
        b"  <close-session/>\n</rpc>"
    )
    data = b"\n#4\n" + msg[:4] + b"\n#" + str(len(msg) - 4).encode() + b"\n" + msg[4:] + b"\n##\n"
    assert chunked().feed(data) == [msg]


def test_chunked_multiple_messages_one_feed() -> None:
    f = chunked()
    data = f.encode(RPC) + f.encode(HELLO) + f.encode(RPC)[:7]
    assert f.feed(data) == [RPC, HELLO]
    assert f.feed(f.encode(RPC)[7:]) == [RPC]


@pytest.mark.parametrize("split", range(1, 40))
def test_chunked_split_at_every_byte(split: int) -> None:
    data = b"\n#3\nabc\n#12\ndefghijklmno\n##\n" + chunked().encode(RPC)
    f = chunked()
    out = f.feed(data[:split]) + f.feed(data[split:])
    assert out == [b"abcdefghijklmno", RPC]


def test_chunked_byte_by_byte_all_boundaries() -> None:
    data = b"\n#3\nabc\n#12\ndefghijklmno\n##\n" * 2
    f = chunked()
    out: list[bytes] = []
    for b in data:
        out += f.feed(bytes([b]))
    assert out == [b"abcdefghijklmno"] * 2


def test_chunk_data_may_contain_markers() -> None:
    payload = b"\n##\n]]>]]>\n#5\n"
    assert chunked().feed(chunked().encode(payload)) == [payload]


@pytest.mark.parametrize(
    "bad",
    [
        b"#4\nabcd\n##\n",  # missing LF
        b"\nX4\nabcd\n##\n",  # missing '#'
        b"\n#0\n\n##\n",  # zero size
        b"\n#04\nabcd\n##\n",  # leading zero
        b"\n#4a\nabcd\n##\n",  # not a number
        b"\n#-4\nabcd\n##\n",  # sign
        b"\n#\nabcd\n##\n",  # empty size
        b"\n#4294967296\n",  # > 2^32-1
        b"\n#12345678901",  # too many digits
        b"\n##\n",  # end-of-chunks without chunk
        b"\n#4\nabcd\n##x",  # bad end-of-chunks
        b"\n#4\nabcdX#2\n",  # garbage after chunk
        b"<rpc/>]]>]]>",  # 1.0 framing after switching
    ],
)
def test_chunked_bad_header(bad: bytes) -> None:
    with pytest.raises(FramingError):
        chunked().feed(bad)


def test_chunked_bad_header_byte_by_byte() -> None:
    f = chunked()
    with pytest.raises(FramingError):
        for b in b"\n#4x\n":
            f.feed(bytes([b]))


def test_chunked_max_size() -> None:
    f = Framer(max_message_size=8)
    f.switch_to_chunked()
    assert f.feed(b"\n#4\nabcd\n#4\nefgh\n##\n") == [b"abcdefgh"]
    with pytest.raises(FramingError):
        f.feed(b"\n#4\nabcd\n#5\n")
    big = Framer()
    big.switch_to_chunked()
    with pytest.raises(FramingError):
        big.feed(b"\n#4294967295\n")


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Framer(max_message_size=0)
