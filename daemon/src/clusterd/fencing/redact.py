"""Secret redaction for fence-agent options and output (pure).

Two layers, both applied before anything is logged or returned (RELIABILITY S8, bug 23):

* by key: option names that hold secrets by the one secret-name rule,
  :func:`clusterd.truth.is_secret_param` (``passwd``, ``password``, ``*secret*``,
  ``*token*``, ``community``, ``*key``, IPMI ``hexadecimal_kg`` ...; not
  ``passwd_script`` nor ``identity_file``, which name a program or a file), have their
  values masked, in the options and wherever agent output assigns them
  (``password: x``, ``--snmp-priv-passwd x``);
* by value: the literal secret values (and their base64 forms, since some agents log
  credentials base64-encoded, fence-agents issue #436) are masked wherever they appear in
  agent stdout/stderr or in error messages.

Every non-empty secret is masked, however short: a one-letter password turns output
unreadable rather than leak.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clusterd.truth import is_secret_param, mask_assignments

MASK = "******"


def normalize_key(key: str) -> str:
    """Option names as fence agents accept them: ``password-script`` == ``password_script``."""
    return key.strip().lower().replace("-", "_")


def is_secret_key(key: str) -> bool:
    """True if the option named ``key`` carries a secret value (clusterd.truth's rule)."""
    return is_secret_param(normalize_key(key))


def redact_options(options: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``options`` with secret values masked (for logs, replies, errors)."""
    return {k: (MASK if is_secret_key(k) and v else v) for k, v in options.items()}


def secret_values(options: Mapping[str, str]) -> tuple[str, ...]:
    """The values of the secret-keyed options (non-empty ones)."""
    return tuple(v for k, v in options.items() if is_secret_key(k) and v)


def _variants(secret: str) -> set[str]:
    raw = secret.encode("utf-8", "surrogateescape")
    out = {secret}
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = enc.decode("ascii")
        out.add(text)
        stripped = text.rstrip("=")
        if len(stripped) >= 4:
            out.add(stripped)
    return {v for v in out if v}


@dataclass(frozen=True)
class Redactor:
    """Masks a fixed set of secret values (and key=value secrets) in any text."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def for_options(cls, options: Mapping[str, str], extra: Iterable[str] = ()) -> Redactor:
        return cls(tuple(sorted({*secret_values(options), *(s for s in extra if s)},
                                key=len, reverse=True)))

    def with_secret(self, secret: str) -> Redactor:
        if not secret:
            return self
        return Redactor.for_options({}, (*self.secrets, secret))

    def redact(self, text: str) -> str:
        if not text:
            return text
        variants: set[str] = set()
        for secret in self.secrets:
            variants |= _variants(secret)
        for variant in sorted(variants, key=len, reverse=True):
            text = text.replace(variant, MASK)
        return mask_assignments(text, MASK)
