"""The JSON body parser every endpoint uses: bounded in size and depth, and NUL-free.

- Bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` are refused with 413, read no further.
- Nesting deeper than orjson's limit (1,024 levels) is a 400, not a ``RecursionError``.
- A NUL character anywhere (a key or a string, at any depth) is a 400 naming
  where it is: PostgreSQL's ``text`` and ``jsonb`` cannot store it, so it must
  never get as far as a query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import orjson
from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from .errors import PayloadTooLarge

NUL = "\x00"


def nul_path(data: Any) -> str | None:
    """The dotted path of the first key or string containing NUL, or None.

    Iterative, so any depth the JSON decoder accepted is walked safely.
    """
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                return path or "non_field_errors"
        elif isinstance(value, Mapping):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if NUL in str(key):
                    return child.replace(NUL, "\\u0000")
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))
    return None


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Decode the body with orjson, within the size and depth bounds, rejecting NUL."""
        if stream is None:
            return {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error: {exc}") from exc
        path = nul_path(data)
        if path is not None:
            raise exceptions.ValidationError({path: ["NUL characters are not allowed."]})
        return data
