"""JSON numbers as JSON Schema reads them (pure), for strict pydantic models at the HTTP edge.

JSON Schema's `integer` is any number with a zero fractional part (2020-12 validation §6.1.1), so `2.0` is
the integer 2; a string or a boolean never is one. Pydantic's strict mode refuses `2.0` and its lax mode
accepts `"2"`: `Integer` takes exactly what the OpenAPI document promises.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator


def integral(value: object) -> object:
    """`2.0` → 2; anything else unchanged (the strict validator after this refuses what is not an int)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(integral)]
IntegralLiteral = BeforeValidator(integral)  # for Literal[...] of ints: Annotated[Literal[1, 2], IntegralLiteral]
