"""Crypto-shredding primitives: a key-encryption key (KEK), per-subject data keys, sealed values.

Every subject's personal values are sealed with AES-256-GCM under a data key of its own; data keys
are stored only wrapped (AES-256-GCM) by the KEK. Destroying a subject's data key makes every value
sealed under it unreadable, while the ciphertext (and so the hash chain over it) stays intact.
Associated data binds each ciphertext to its tenant, subject and event, so a sealed value cannot be
moved to another record and still open.
"""

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import ConfigError
from ledger.private_files import write_private
from ledger.settings import Settings

NONCE_BYTES = 12
KEY_BYTES = 32


class Unreadable(Exception):
    """A sealed value whose key is destroyed, or whose ciphertext does not authenticate."""


@dataclass(frozen=True)
class MasterKey:
    """The key-encryption key, and a short public id telling which KEK wrapped a data key."""

    secret: bytes

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256 over the key: identifies it without revealing it."""
        return hashlib.sha256(b"consent-ledger kek id" + self.secret).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str, origin: str) -> "MasterKey":
        """A KEK from its base64 text (44 characters for 32 bytes)."""
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != KEY_BYTES:
            raise ConfigError(
                f"{origin} is not a base64-encoded 32-byte key: make one with "
                "`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`"
            )
        return cls(secret)

    @classmethod
    def generate(cls) -> "MasterKey":
        """A fresh random KEK."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def text(self) -> str:
        """The base64 form, as LEDGER_MASTER_KEY takes it."""
        return base64.b64encode(self.secret).decode()

    def wrap(self, data_key: bytes, context: str) -> bytes:
        """Encrypt a data key under this KEK, bound to `context`."""
        return _seal_bytes(self.secret, data_key, context)

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        """Decrypt a data key wrapped by `wrap` with the same context."""
        return _open_bytes(self.secret, wrapped, context)


def master_key(settings: Settings, *, create: bool) -> tuple[MasterKey, Path | None]:
    """The configured KEK: LEDGER_MASTER_KEY, else LEDGER_MASTER_KEY_FILE, else `<home>/master.key`.

    Only the embedded default's file may be created (with `create`); the path is returned when it
    was, so the caller can say so.
    """
    if settings.master_key:
        return MasterKey.parse(settings.master_key, "LEDGER_MASTER_KEY"), None
    if settings.master_key_file:
        if not settings.master_key_file.exists():
            raise ConfigError(f"LEDGER_MASTER_KEY_FILE {settings.master_key_file} does not exist")
        return MasterKey.parse(settings.master_key_file.read_text(), str(settings.master_key_file)), None
    path = settings.home / "master.key"
    if path.exists():
        return MasterKey.parse(path.read_text(), str(path)), None
    if not create:
        raise ConfigError(
            f"no master key at {path}: run `consent-ledger up` to generate one, "
            "or set LEDGER_MASTER_KEY / LEDGER_MASTER_KEY_FILE"
        )
    return _create_key_file(path), path


def replace_key_file(settings: Settings, new: MasterKey) -> Path | None:
    """Put `new` in the embedded master key file, the old key kept beside it in `master.key.previous`;
    the file's path, or None when the key is configured (LEDGER_MASTER_KEY, LEDGER_MASTER_KEY_FILE)
    and whoever configured it must point it at the new key."""
    if settings.master_key or settings.master_key_file:
        return None
    path = settings.home / "master.key"
    path.replace(settings.home / "master.key.previous")
    write_private(path, new.text() + "\n", new=True)
    return path


def _create_key_file(path: Path) -> MasterKey:
    key = MasterKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, key.text() + "\n", new=True)
    return key


def new_data_key() -> bytes:
    """A fresh random AES-256 data key."""
    return secrets.token_bytes(KEY_BYTES)


def seal(data_key: bytes, values: dict[str, Any], context: str) -> str:
    """Encrypt a JSON object of personal values; the result is base64 text safe to store."""
    return base64.b64encode(_seal_bytes(data_key, orjson.dumps(values), context)).decode()


def unseal(data_key: bytes, sealed: str, context: str) -> dict[str, Any]:
    """Decrypt what `seal` produced with the same key and context."""
    values: dict[str, Any] = orjson.loads(_open_bytes(data_key, base64.b64decode(sealed), context))
    return values


def _seal_bytes(key: bytes, plaintext: bytes, context: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def _open_bytes(key: bytes, sealed: bytes, context: str) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
    except InvalidTag:
        raise Unreadable("ciphertext does not authenticate under this key and context") from None
