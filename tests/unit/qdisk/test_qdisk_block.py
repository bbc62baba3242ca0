"""The quorum disk's layout (clusterd.qdisk.block): the header mkqdisk writes, and the
signed status blocks; anything clusterd did not write with this cluster's key, for this
slot, reads as no block at all."""

from __future__ import annotations

from dataclasses import replace

import pytest
from clusterd.qdisk.block import (
    BLOCK_MAGIC,
    HEADER_MAGIC,
    MAX_NODEID,
    SIZE,
    SLOT,
    Block,
    DiskState,
    Header,
    decode_block,
    decode_header,
    disk_key,
    encode_block,
    encode_header,
    mask_of,
)

SECRET = b"\x01" * 32
KEY = disk_key(SECRET, "alpha")


BLOCK = Block(nodeid=3, incarnation=1_700_000_000_123, seq=42, state=DiskState.MASTER,
              score=3, max_score=4, vote_for=3, grant=(7, 2, 1_700_000_000_001),
              mask=mask_of({1, 3, 16}), wall_ms=1_700_000_000_999)


def block(**kw) -> Block:
    return replace(BLOCK, **kw)


# ------------------------------------------------------------------ header
def test_layout_constants():
    assert SLOT == 4096 and MAX_NODEID == 16 and SIZE == 17 * 4096


def test_header_round_trip():
    raw = encode_header("qdisk-alpha", created=1_234_567)
    assert len(raw) == SLOT and raw.startswith(HEADER_MAGIC)
    assert decode_header(raw) == Header("qdisk-alpha", 1_234_567)


def test_header_with_the_longest_label_and_the_current_time():
    label = "x" * 64
    header = decode_header(encode_header(label))
    assert header is not None and header.label == label and header.created > 1_600_000_000


def test_a_label_over_64_bytes_is_refused():
    with pytest.raises(ValueError, match="longer than 64 bytes"):
        encode_header("é" * 33)   # 66 bytes in UTF-8


@pytest.mark.parametrize("data", [
    b"",
    b"\0" * SLOT,                                  # a blank disk
    b"RHCQDHD" + b"\0" * (SLOT - 7),               # short magic
    b"\xff" * SLOT,                                # garbage
    encode_header("a")[:20],                       # truncated
])
def test_no_header_reads_as_none(data):
    assert decode_header(data) is None


def test_a_header_of_another_format_version_reads_as_none():
    raw = bytearray(encode_header("a", created=1))
    raw[8:10] = (2).to_bytes(2, "big")
    assert decode_header(bytes(raw)) is None


def test_a_status_block_is_not_a_header():
    assert decode_header(encode_block(block(), KEY)) is None


# ------------------------------------------------------------------ blocks
@pytest.mark.parametrize("b", [
    block(),
    block(state=DiskState.NONE, score=0, vote_for=0, grant=None, mask=0, wall_ms=0),
    block(state=DiskState.AVAILABLE, vote_for=1, grant=None, mask=0),
    block(state=DiskState.BID, grant=None, mask=0),
    block(nodeid=16, mask=mask_of(set(range(1, 17)))),
    block(nodeid=1, incarnation=2**64 - 1, seq=2**64 - 1, wall_ms=2**64 - 1),
])
def test_block_round_trip(b):
    raw = encode_block(b, KEY)
    assert len(raw) == SLOT and raw.startswith(BLOCK_MAGIC)
    assert decode_block(raw, b.nodeid, (KEY,)) == b


def test_a_grant_with_epoch_zero_reads_as_no_grant():
    """Epoch 0 is the encoding of "no grant": a view id never has epoch 0."""
    raw = encode_block(block(grant=None), KEY)
    assert decode_block(raw, 3, (KEY,)).grant is None


def test_any_of_the_accepted_keys_verifies():
    old = disk_key(b"\x02" * 32, "alpha")
    raw = encode_block(block(), old)
    assert decode_block(raw, 3, (KEY, old)) == block()
    assert decode_block(raw, 3, (KEY,)) is None
    assert decode_block(raw, 3, ()) is None


def test_a_block_signed_with_another_key_reads_as_none():
    other = disk_key(b"\x09" * 32, "alpha")
    assert decode_block(encode_block(block(), other), 3, (KEY,)) is None


def test_a_block_of_another_cluster_with_the_same_secret_reads_as_none():
    """The key is bound to the cluster name: two clusters sharing a key file (and a LUN
    by mistake) cannot give each other votes."""
    beta = disk_key(SECRET, "beta")
    assert beta != KEY
    assert decode_block(encode_block(block(), beta), 3, (KEY,)) is None
    assert decode_block(encode_block(block(), KEY), 3, (beta,)) is None


def test_disk_key_is_deterministic_and_depends_on_both_inputs():
    assert disk_key(SECRET, "alpha") == KEY and len(KEY) == 32
    assert disk_key(b"\x01" * 31 + b"\x02", "alpha") != KEY


def test_a_block_in_the_wrong_slot_reads_as_none():
    """A block copied (or replayed) into another node's slot gives that node nothing."""
    raw = encode_block(block(nodeid=3), KEY)
    assert decode_block(raw, 3, (KEY,)) is not None
    for slot in (1, 2, 4, 16):
        assert decode_block(raw, slot, (KEY,)) is None


@pytest.mark.parametrize("offset", [0, 8, 12, 30, 40, 60, 70, 80])
def test_any_flipped_bit_in_the_signed_part_reads_as_none(offset):
    raw = bytearray(encode_block(block(), KEY))
    raw[offset] ^= 0x01
    assert decode_block(bytes(raw), 3, (KEY,)) is None


def test_the_padding_after_the_signature_is_not_signed():
    """Only the struct and its MAC count: what follows in the slot is never read."""
    raw = bytearray(encode_block(block(), KEY))
    raw[-1] = 0xFF
    assert decode_block(bytes(raw), 3, (KEY,)) == block()


@pytest.mark.parametrize("make", [
    lambda raw: b"",
    lambda raw: b"\0" * SLOT,                          # never written
    lambda raw: b"\xff" * SLOT,                        # garbage
    lambda raw: raw[:40],                              # truncated mid-struct
    lambda raw: raw[:90],                              # struct, part of the MAC
    lambda raw: b"\0" * 64 + raw[64:],                 # torn: the first bytes lost
    lambda raw: raw[:60] + b"\0" * (SLOT - 60),        # torn: the struct's end and MAC lost
    lambda raw: raw[:80] + b"\0" * (SLOT - 80),        # torn: half the MAC lost
    lambda raw: encode_header("qd"),                   # the header in a node slot
])
def test_torn_blank_or_garbage_slots_read_as_none(make):
    assert decode_block(make(encode_block(block(), KEY)), 3, (KEY,)) is None


def test_a_torn_old_and_new_block_mix_reads_as_none():
    """A write torn between the previous block and the new one: neither is trusted."""
    old, new = encode_block(block(seq=1), KEY), encode_block(block(seq=2), KEY)
    for cut in (28, 40, 67, 80, 98):   # seq ends at byte 27, the MAC is bytes 67..98
        assert decode_block(new[:cut] + old[cut:], 3, (KEY,)) is None


def test_a_signed_block_with_an_unknown_state_reads_as_none():
    """Even correctly signed, a state beyond MASTER (a newer format) is not trusted."""
    import hashlib
    import hmac
    import struct

    from clusterd.qdisk import block as mod

    body = mod._BLOCK.pack(BLOCK_MAGIC, mod.FORMAT, 3, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0)
    raw = body + hmac.new(KEY, body, hashlib.sha256).digest()
    assert decode_block(raw, 3, (KEY,)) is None
    body_v2 = mod._BLOCK.pack(BLOCK_MAGIC, 2, 3, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
    raw = body_v2 + hmac.new(KEY, body_v2, hashlib.sha256).digest()
    assert decode_block(raw, 3, (KEY,)) is None
    wrong_magic = mod._BLOCK.pack(b"RHCQDSK0", 1, 3, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
    raw = wrong_magic + hmac.new(KEY, wrong_magic, hashlib.sha256).digest()
    assert decode_block(raw, 3, (KEY,)) is None
    assert struct.calcsize("!8sHHQQBHHHQIQIQ") == mod._BLOCK.size


# ------------------------------------------------------------------ masks
def test_mask_of_and_granted_round_trip():
    for ids in ({1}, {16}, {1, 2, 3}, set(range(1, 17)), {5, 9, 12}):
        b = block(mask=mask_of(ids))
        assert b.granted() == frozenset(ids)
    assert mask_of(frozenset({1, 3})) == 0b1010


def test_mask_of_ignores_ids_outside_1_to_16():
    assert mask_of({0, 17, -1, 100}) == 0
    assert mask_of({0, 2, 17}) == 1 << 2


def test_granted_ignores_bits_outside_1_to_16():
    assert block(mask=1 | 1 << 17 | 1 << 4).granted() == frozenset({4})
    assert block(mask=0).granted() == frozenset()


def test_granted_survives_the_disk():
    b = block(mask=mask_of({2, 7, 16}))
    assert decode_block(encode_block(b, KEY), 3, (KEY,)).granted() == {2, 7, 16}
