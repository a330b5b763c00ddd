"""Key material: from the environment in production, generated once under var/ otherwise."""

from __future__ import annotations

import json
import os
import secrets as pysecrets
from dataclasses import dataclass, field
from pathlib import Path

from shared.pii import PiiCipher, generate_key_b64
from shared.settings import Environment, SecretSettings


@dataclass(frozen=True)
class Secrets:
    """The three secrets the services share."""

    pii_encryption_key: str = field(repr=False)
    pii_hash_key: str = field(repr=False)
    jwt_secret: str = field(repr=False)

    def cipher(self) -> PiiCipher:
        """Return the PII cipher built from these keys."""
        return PiiCipher.from_base64(self.pii_encryption_key, self.pii_hash_key)


class MissingSecrets(RuntimeError):
    """Production was started without its key material."""


def load_secrets(environment: Environment, var_dir: Path) -> Secrets:
    """Return the secrets from FANGPIN_* variables, or (not in production) from var/secrets.json."""
    env = SecretSettings()
    if env.pii_encryption_key and env.pii_hash_key and env.jwt_secret:
        return Secrets(env.pii_encryption_key, env.pii_hash_key, env.jwt_secret)
    if environment == "production":
        raise MissingSecrets(
            "production needs FANGPIN_PII_ENCRYPTION_KEY, FANGPIN_PII_HASH_KEY and FANGPIN_JWT_SECRET"
        )
    path = var_dir / "secrets.json"
    if path.exists():
        data = json.loads(path.read_text())
        return Secrets(data["pii_encryption_key"], data["pii_hash_key"], data["jwt_secret"])
    made = Secrets(generate_key_b64(), generate_key_b64(), pysecrets.token_urlsafe(32))
    var_dir.mkdir(parents=True, exist_ok=True)
    # Written once and kept: losing it would make every encrypted resident ID unreadable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {
                "pii_encryption_key": made.pii_encryption_key,
                "pii_hash_key": made.pii_hash_key,
                "jwt_secret": made.jwt_secret,
            },
            fh,
        )
    return made
