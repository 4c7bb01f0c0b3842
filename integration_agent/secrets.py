"""What a secret is, how it is masked, and where it may be written: one module.

A value is secret when it is:

- a manifest parameter with ``secret: true`` (``params.ResolvedParams.secrets``: the license key, a proxy
  with a password), or a value the inventory vault-decrypts for one (``api._with_inventory_secrets``);
- a become or vault password (``ansible_env.AnsibleSecrets``);
- any value under a secret-looking key (``SECRET_KEY``: password, token, license_key...), wherever a record
  or bundle holds one;
- in free text (a failure message that becomes a learned note), anything ``TEXT_PATTERNS`` recognises.

Known values are replaced by ``MASK`` wherever they appear (:class:`Redactor`, in every event, journal line,
report and printed line); values under secret-looking keys are masked in JSON (:func:`mask_secret_keys`,
:func:`mask_json_text`); free text is masked by pattern (:func:`mask_secret_text`). Secrets are written only
to 0600 files in a run's private dir, on a memory file system unless the user names a folder
(``scratch.Scratch``, ``executor.write_secret``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MASK = "********"


class Redactor:
    """Replaces every occurrence of known secret values, wherever they sit in a nested structure."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)) if isinstance(k, str) else k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value


SECRET_KEY = re.compile(r"license_key|password|passwd|token|api_key|apikey|secret|private_key", re.IGNORECASE)
# A "key": "value" pair with a secret-looking key, for JSON lines that do not parse.
SECRET_PAIR = re.compile(r'("[^"\\]*(?:license_key|password|passwd|token|api_key|apikey|secret|private_key)[^"\\]*"'
                          r'\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*)', re.IGNORECASE)


def mask_secret_keys(value: Any, *, inside: bool = False) -> Any:
    """``value`` with every value under a secret-looking key (password, token, license_key...) masked.

    Under such a key, strings and numbers are masked, nested containers are masked leaf by leaf,
    booleans and nulls are kept (they tell whether a secret was set without showing it).
    """
    if isinstance(value, dict):
        return {k: mask_secret_keys(v, inside=inside or (isinstance(k, str) and bool(SECRET_KEY.search(k))))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secret_keys(v, inside=inside) for v in value]
    if inside and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value if value in ("", MASK) else MASK
    return value


def secret_values(value: Any, *, inside: bool = False) -> Iterable[str]:
    """String values under secret-looking keys: masked in every file of the bundle, not only there."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from secret_values(v, inside=inside or (isinstance(k, str) and bool(SECRET_KEY.search(k))))
    elif isinstance(value, list):
        for v in value:
            yield from secret_values(v, inside=inside)
    elif inside and isinstance(value, str) and value != MASK and len(value) >= 6:
        yield value



def mask_json_text(text: str, indent: int | None) -> str:
    """``text`` (one JSON document) with secret-looking keys masked; byte for byte the same when nothing
    needed masking, so an exported journal still verifies."""
    try:
        data = json.loads(text)
    except ValueError:
        return SECRET_PAIR.sub(lambda m: m.group(1) + json.dumps(MASK), text)
    masked = mask_secret_keys(data)
    if masked == data:
        return text
    separators = (",", ":") if indent is None else None
    return json.dumps(masked, indent=indent, separators=separators, ensure_ascii=False, default=str)



TEXT_PATTERNS = (  # a secret inside free text: key=value, --password VALUE, credentials in a URL...
    (re.compile(r"""(?ix) (["']?[\w.-]*(?:key|token|passw(?:or)?d|secret|credential)[\w.-]*["']?) (\s*[=:]\s*)
                (?:"[^"]*"|'[^']*'|[^\s,;&'"}\])]+)"""), rf"\1\2{MASK}"),
    (re.compile(r"(?i)(?<![\w-])(--?[\w-]*(?:key|token|password|secret)[\w-]*)\s+(?!-)\S+"), rf"\1 {MASK}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"), rf"\1:{MASK}@"),
    (re.compile(r"(?i)\b(?:[0-9a-f]{36}NRAL|NR[A-Z]{2}-[A-Z0-9]{20,})\b"), MASK),  # New Relic key shapes
)


def mask_secret_text(text: str) -> str:
    """``text`` with whatever looks like a secret in free text masked (``TEXT_PATTERNS``)."""
    for pattern, replacement in TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text
