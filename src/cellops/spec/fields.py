"""Field types shared by the fleet documents: names, labels, durations, quantities, images.

Each type validates its own syntax and says what was expected, so errors read like
"expected a DNS-1123 label (lower-case letters, digits, '-'; at most 63 characters)".
Pure: no I/O.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?\Z")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?\Z")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTRACT = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/v[1-9][0-9]*\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?\Z")
_QUANTITY_FACTOR = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


class FieldError(ValueError):
    """A validation error about a field below the model that raised it.

    Model validators see the whole model but pydantic reports their errors at the model's
    own path; `path` lets the error mapper point at the line of the offending field.
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def _check_dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label: expected lower-case letters, digits and '-',"
            " starting and ending with a letter or digit, at most 63 characters"
        )
    return value


def _check_port_name(value: str) -> str:
    if not _PORT_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a port name: expected at most 15 lower-case letters, digits"
            " and '-', with at least one letter"
        )
    return value


def _check_label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if not name or not _LABEL_NAME.match(name) or (prefix and not _LABEL_PREFIX.match(prefix)):
        raise ValueError(
            f"{value!r} is not a label key: expected an optional DNS prefix and '/', then"
            " at most 63 letters, digits, '-', '_' or '.'"
        )
    return value


def _check_label_value(value: str) -> str:
    if not _LABEL_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a label value: expected at most 63 letters, digits, '-', '_'"
            " or '.', starting and ending with a letter or digit"
        )
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name: expected [A-Za-z_][A-Za-z0-9_]*"
        )
    return value


def _check_contract(value: str) -> str:
    if not _CONTRACT.match(value):
        raise ValueError(f"{value!r} is not a contract: expected 'name/vN', as in 'payments/v2'")
    return value


def parse_duration(value: object) -> object:
    """'90s', '1m30s', '250ms', '2h' or a number of seconds -> seconds as a float."""
    if isinstance(value, bool):
        return value  # let pydantic reject it with its own message
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
            return sum(float(n) * scale[u] for n, u in parts)
        raise ValueError(
            f"{value!r} is not a duration: expected e.g. '30s', '5m', '1m30s', '250ms'"
        )
    return value


def format_duration(seconds: float) -> str:
    if seconds == int(seconds):
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
        return out + (f"{secs}s" if secs or not out else "")
    return f"{round(seconds * 1000)}ms"


def _check_nonnegative(value: float) -> float:
    if value < 0:
        raise ValueError("a duration cannot be negative")
    return value


def quantity_value(text: str) -> Decimal:
    """The numeric value of a Kubernetes quantity ('100m' -> 0.1, '64Mi' -> 67108864)."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(text)
    return Decimal(match.group(1)) * _QUANTITY_FACTOR[match.group(2)]


def _check_quantity(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        try:
            quantity_value(value)
        except (ValueError, InvalidOperation):
            raise ValueError(
                f"{value!r} is not a quantity: expected e.g. '500m', '2', '512Mi', '1G'"
            ) from None
    return value


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (yes, no, on and off are true and false in YAML)"
    return f"the text {value!r}" if isinstance(value, str) else repr(value)


def _whole_number(value: object) -> object:
    """Only a number as written: YAML's `yes` (true) or the text "3" are not guessed."""
    if isinstance(value, bool | str):
        raise ValueError(f"expected a whole number, got {_shown(value)}")
    return value


def _yes_no(value: object) -> object:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_shown(value)}")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
YesNo = Annotated[bool, BeforeValidator(_yes_no)]
DnsLabel = Annotated[str, AfterValidator(_check_dns_label)]
PortName = Annotated[str, AfterValidator(_check_port_name)]
LabelKey = Annotated[str, AfterValidator(_check_label_key)]
LabelValue = Annotated[str, AfterValidator(_check_label_value)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
Contract = Annotated[str, AfterValidator(_check_contract)]
Quantity = Annotated[
    str,
    BeforeValidator(_check_quantity),
    WithJsonSchema({"type": ["string", "integer"], "pattern": _QUANTITY.pattern}),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    AfterValidator(_check_nonnegative),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h))+$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration such as '30s', '5m', '1m30s', or a number of seconds",
        }
    ),
]
Labels = dict[LabelKey, LabelValue]
