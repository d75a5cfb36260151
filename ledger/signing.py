"""The checkpoint signing key: Ed25519, separate from the master key, named by a public key id.

Tree heads are signed with it, so anyone holding the public key (`consent-ledger signing-key
--public`) can check a tree head or a receipt without any secret, and rotating the master key never
touches a checkpoint. Each tree head stores the id of the key that signed it, so heads signed by an
earlier signing key still verify against that key's public half.
"""

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import ConfigError
from ledger.private_files import write_private
from ledger.settings import Settings

PUBLIC_PREFIX = "ed25519:"
KEY_BYTES = 32
FILE_NAME = "signing.key"


@dataclass(frozen=True)
class PublicKey:
    """The public half of a signing key: verifies tree heads."""

    raw: bytes

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256 over the raw public key."""
        return hashlib.sha256(self.raw).hexdigest()[:16]

    def text(self) -> str:
        """`ed25519:` and the base64 of the 32 raw bytes: the form to publish."""
        return PUBLIC_PREFIX + base64.b64encode(self.raw).decode()

    @classmethod
    def parse(cls, text: str, origin: str) -> "PublicKey":
        """A public key from its published form."""
        body = text.strip().removeprefix(PUBLIC_PREFIX)
        raw = _decode(body)
        if not text.strip().startswith(PUBLIC_PREFIX) or len(raw) != KEY_BYTES:
            raise ConfigError(
                f"{origin} is not a public signing key: expected `ed25519:` and base64 of 32 bytes, "
                "as `consent-ledger signing-key --public` prints it"
            )
        return cls(raw)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """True when `signature` is this key's over `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """The private signing key (32-byte Ed25519 seed)."""

    seed: bytes

    @property
    def public(self) -> PublicKey:
        """Its public half."""
        raw = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return PublicKey(raw.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature over `message`."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    def text(self) -> str:
        """The base64 form, as LEDGER_SIGNING_KEY takes it."""
        return base64.b64encode(self.seed).decode()

    @classmethod
    def generate(cls) -> "SigningKey":
        """A fresh random signing key."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def parse(cls, text: str, origin: str) -> "SigningKey":
        """A signing key from its base64 text."""
        seed = _decode(text.strip())
        if len(seed) != KEY_BYTES:
            raise ConfigError(
                f"{origin} is not a base64-encoded 32-byte Ed25519 signing key: make one with "
                "`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`"
            )
        return cls(seed)


def signing_key(settings: Settings, *, create: bool) -> SigningKey:
    """LEDGER_SIGNING_KEY, else LEDGER_SIGNING_KEY_FILE, else `<home>/signing.key` (created with `create`)."""
    if settings.signing_key:
        return SigningKey.parse(settings.signing_key, "LEDGER_SIGNING_KEY")
    if settings.signing_key_file:
        if not settings.signing_key_file.exists():
            raise ConfigError(f"LEDGER_SIGNING_KEY_FILE {settings.signing_key_file} does not exist")
        return SigningKey.parse(settings.signing_key_file.read_text(), str(settings.signing_key_file))
    path = settings.home / FILE_NAME
    if path.exists():
        return SigningKey.parse(path.read_text(), str(path))
    if not create:
        raise ConfigError(
            f"no signing key at {path}: take a checkpoint (`consent-ledger checkpoint`) to generate one, "
            "or set LEDGER_SIGNING_KEY / LEDGER_SIGNING_KEY_FILE; to check without the secret, "
            "pass the published public key with --public-key"
        )
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, key.text() + "\n", new=True)
    return key


def read_public_keys(paths: list[Path]) -> list[PublicKey]:
    """The public keys in these files (one per file, as `signing-key --public` prints it)."""
    keys = []
    for path in paths:
        try:
            keys.append(PublicKey.parse(path.read_text(), str(path)))
        except OSError as error:
            raise ConfigError(f"cannot read public key {path}: {error.strerror}") from None
    return keys


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


class WrongSigningKey(ConfigError):
    """No key given signed the checkpoints: the configuration is wrong, the log is not (yet) in doubt."""
