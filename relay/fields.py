"""Model fields for secrets: stored encrypted (django-fernet-encrypted-fields), never in clear text."""
from __future__ import annotations

import re

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import models
from django.utils.functional import cached_property
from encrypted_fields.fields import EncryptedCharField, EncryptedFieldMixin

# What a Fernet token looks like: version byte 0x80, so base64 "gAAAAA...".
_FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_-]{90,}={0,2}")


def undecryptable(value: str) -> bool:
    """Whether a secret read back is still a Fernet token: it was encrypted with another key."""
    return bool(value) and bool(_FERNET_TOKEN.fullmatch(value))


# Keys derived (PBKDF2, 100,000 rounds) once per process and key material, not once per field.
_DERIVED_KEYS: dict[tuple, list[bytes]] = {}


class SecretField(EncryptedCharField):
    """A password or URL encrypted at rest with a key derived from ``SECRET_KEY`` and ``SALT_KEY``.

    Empty stays empty (and NOT NULL); a value from before encryption reads as
    it was, and the data migration encrypts it. A token that no configured key
    opens reads back as the token: :func:`undecryptable` tells it apart, so the
    relay can say that the key changed instead of sending the token as a password.
    """

    @cached_property
    def keys(self) -> list[bytes]:
        material = (settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())), repr(settings.SALT_KEY))
        if material not in _DERIVED_KEYS:
            # The library's own derivation, uncached. mypy types a cached_property read from its class as the
            # function it wraps (as it does a property); at runtime it is the cached_property, which has .func.
            _DERIVED_KEYS[material] = EncryptedFieldMixin.keys.func(self)  # type: ignore[attr-defined]
        return _DERIVED_KEYS[material]

    def get_prep_value(self, value):
        if value is None or value == "":
            return value
        return super().get_prep_value(value)

    def to_python(self, value):
        if value is None or not isinstance(value, str):
            return value
        try:
            return self.f.decrypt(value.encode("utf-8")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            return value

    def clean(self, value, model_instance):
        # The library marks the shared field instance "already decrypted" during clean() and unmarks it after:
        # a ValidationError leaves the mark for good, and another thread reads tokens meanwhile. A clear value
        # is no Fernet token, so decrypting it is a harmless no-op: no mark is needed.
        return models.CharField.clean(self, value, model_instance)
