"""v3 packet keys: the HKDF labels and the nonce layout are exactly the documented ones
(checked against an independent RFC 5869 computation with hmac), and every part of the
direction (cluster, sender, receiver, sender incarnation) gives another key."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

from clusterd.wire.codec import HEADER3_SIZE, encode_packet
from clusterd.wire.keys import WireKeys, packet_key
from clusterd.wire.messages import Leave
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY = bytes(range(256))


def rfc5869(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.digest(salt, ikm, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")  # one block: 32 bytes


def test_packet_key_is_hkdf_sha256_with_the_documented_labels() -> None:
    info = b"clusterd/3 packet\0" + struct.pack("!HIIQ", 4242, 2, 1, 1764100000123456)
    prk = hmac.digest(b"clusterd wire v3", KEY, "sha256")
    assert packet_key(prk, 4242, 2, 1, 1764100000123456) == \
        rfc5869(KEY, b"clusterd wire v3", info)


def test_a_packet_opens_with_the_documented_key_nonce_and_associated_data() -> None:
    data = encode_packet(Leave("bye"), key=KEY, cluster_id=4242, sender=2, incarnation=9,
                         seq=0x0102030405, receiver=1, receiver_incarnation=5)
    key = rfc5869(KEY, b"clusterd wire v3",
                  b"clusterd/3 packet\0" + struct.pack("!HIIQ", 4242, 2, 1, 9))
    nonce = bytes(4) + (0x0102030405).to_bytes(8, "big")
    head = data[:HEADER3_SIZE]
    plain = AESGCM(key).decrypt(nonce, data[HEADER3_SIZE:], head)
    assert json.loads(plain) == {"r": "bye"}
    assert struct.unpack("!Q", head[-8:]) == (5,)


def test_every_part_of_the_direction_changes_the_key() -> None:
    prk = hmac.digest(b"clusterd wire v3", KEY, "sha256")
    base = (4242, 2, 1, 9)
    keys = {packet_key(prk, *base)}
    for i in range(4):
        other = list(base)
        other[i] += 1
        keys.add(packet_key(prk, *other))
    keys.add(packet_key(prk, 4242, 1, 2, 9))                # the other direction
    keys.add(packet_key(hmac.digest(b"clusterd wire v3", KEY[::-1], "sha256"), *base))
    assert len(keys) == 7


def test_derived_keys_are_cached_and_the_authkey_is_not_in_the_repr() -> None:
    keys = WireKeys(KEY)
    assert keys.aead(1, 2, 3, 4) is keys.aead(1, 2, 3, 4)
    assert keys.aead(1, 2, 3, 4) is not keys.aead(1, 2, 3, 5)
    assert KEY.hex()[:16] not in repr(keys) and "256-byte" in repr(keys)
    assert hashlib.sha256(KEY).hexdigest()[:12] not in repr(keys)
