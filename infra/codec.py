"""Encryption of what the app puts into Temporal: an AES-256-GCM payload codec with a key ring.

Every payload the SDK runs through a codec (workflow and activity inputs and results, signals,
updates, queries and their answers, memo, summaries and details, failures' messages with
`DefaultFailureConverterWithEncodedAttributes`) is stored in Temporal as ciphertext; search
attributes and workflow ids are not, so they must hold no customer data.

Keys rotate: the first key of the ring encrypts, every key of the ring decrypts; each payload
names the key that encrypted it in its metadata. A payload without our encoding (a signal sent
with the `temporal` CLI, another service without the codec) passes through as it is.

`cryptography` and pydantic's converter are imported where they are used (a codec made, a
converter asked for): a process without keys loads no cipher, and `starter.py --help`, which
connects to nothing, loads neither.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"  # the value Temporal's samples use; the Web UI knows it
KEY_ID = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's 96-bit nonce, fresh for every payload

_KEY_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class KeyRingError(ValueError):
    """A key ring that cannot be used; the message names key ids, never key material."""


class DecryptionError(ValueError):
    """An encrypted payload this ring cannot open: unknown key id, or failed authentication."""


def parse_keys(text: str) -> dict[str, bytes]:
    """`id=base64key,id2=base64key` → {id: key}, in order (the first encrypts).

    Each key is the standard base64 of 32 random bytes (`openssl rand -base64 32`)."""
    keys: dict[str, bytes] = {}
    for position, item in enumerate(text.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        key_id, sep, encoded = item.partition("=")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise KeyRingError(f"entry {position} is not `id=base64key`")
        if not _KEY_ID_SHAPE.fullmatch(key_id):
            raise KeyRingError(
                f"key id {key_id!r}: use letters, digits, '.', '_' or '-' (at most 64)"
            )
        if key_id in keys:
            raise KeyRingError(f"key id {key_id!r} appears twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyRingError(f"key {key_id!r} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise KeyRingError(
                f"key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES} "
                "(make one with `openssl rand -base64 32`)"
            )
        keys[key_id] = key
    if not keys:
        raise KeyRingError("no keys: give `id=base64key[,older-id=base64key...]`")
    return keys


def new_key_line(key_id: str) -> str:
    """A fresh ring of one key, as ENCRYPTION_KEYS reads it (for `make run`'s key file)."""
    return f"{key_id}={base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload; the key id is also the associated data, so
    a payload moved under another key id fails authentication instead of decrypting."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise KeyRingError("an encryption codec needs at least one key")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.key_id = next(iter(keys))  # the first key encrypts

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.key_id]
        aad = self.key_id.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: aad},
                    data=nonce + cipher.encrypt(nonce, payload.SerializeToString(), aad),
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(payload) for payload in payloads]

    def decode_one(self, payload: Payload) -> Payload:
        from cryptography.exceptions import InvalidTag

        if payload.metadata.get("encoding") != ENCODING:
            return payload  # not ours: sent without the codec, taken as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(repr(k) for k in self._ciphers)
            raise DecryptionError(
                f"payload encrypted with key id {key_id!r}, which is not in ENCRYPTION_KEYS "
                f"(known: {known}); add that key back to the ring to read it"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise DecryptionError(
                f"payload under key id {key_id!r} failed authentication: it was altered, or "
                "the key with that id is not the one that encrypted it"
            ) from None
        return Payload.FromString(plain)


def data_converter(keys: Mapping[str, bytes] | None) -> DataConverter:
    """The project's converter (pydantic), encrypted when there are keys: payloads through
    the codec, and failures' messages and stack traces moved into their encoded attributes
    (an SMTP error can quote an address)."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    if not keys:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
