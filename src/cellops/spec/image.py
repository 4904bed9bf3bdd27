"""Container image references: registry/repository[:tag][@sha256:digest].

Follows the Docker reference grammar closely enough to find the registry and the digest.
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"^[\w][\w.-]{0,127}\Z")
DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None


def parse_image(text: str) -> ImageRef:
    """Parse an image reference, raising ValueError with what was expected."""
    name, at, digest = text.partition("@")
    if at and not _DIGEST.match(digest):
        raise ValueError(f"{text!r} has a malformed digest: expected '@sha256:' and 64 hex digits")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DEFAULT_REGISTRY, name
    last = path.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG.match(tag):
            raise ValueError(f"{text!r} has a malformed tag {tag!r}")
    if not path or not all(_COMPONENT.match(part) for part in path.split("/")):
        raise ValueError(
            f"{text!r} is not an image reference: expected registry/name@sha256:<digest>"
        )
    return ImageRef(registry, path, tag, digest or None)
