"""JSON merge patch (RFC 7386), the patch format of service overrides and fleet defaults.

Pure: no I/O.
"""

from __future__ import annotations


def merge_patch(target: object, patch: object) -> object:
    """Apply `patch` to `target` without modifying either.

    Mappings merge key by key, `null` deletes a key, anything else (lists included)
    replaces the target value whole.
    """
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
