"""Serializer pieces every endpoint shares: string ids, id inputs, envelopes, validation."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

MAX_ID = 2**63 - 1  # the largest primary key PostgreSQL's bigint holds
QUERY_CACHE_SIZE = 1024  # distinct query strings whose validated parameters are kept


class StrIdMixin(serializers.Serializer):
    """Ids are strings in every response, as the specification's types declare them."""

    id = serializers.CharField(source="pk", read_only=True)


class IdField(serializers.IntegerField):
    """A primary key sent by a client: a positive integer that fits a bigint."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


def validated(serializer_class: type[serializers.Serializer], data: Any, **context: Any) -> dict:
    """Validate ``data`` (a body or query parameters); 400 in the envelope if invalid."""
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@functools.lru_cache(maxsize=QUERY_CACHE_SIZE)
def _validated_query(
    serializer_class: type[serializers.Serializer], query_string: str, context: tuple
) -> dict:
    return validated(serializer_class, QueryDict(query_string), **dict(context))


def validated_query(
    serializer_class: type[serializers.Serializer], request: Any, **context: Any
) -> dict:
    """``validated`` for query parameters, remembered per query string (read-only result).

    A hot endpoint sees the same few query strings again and again; running a
    serializer for each request cost more than answering from the cache.
    Invalid ones are not remembered (the 400 is raised each time).
    """
    return validated_query_string(serializer_class, request.META.get("QUERY_STRING", ""), **context)


def validated_query_string(
    serializer_class: type[serializers.Serializer], query_string: str, **context: Any
) -> dict:
    """``validated_query`` for a query string kept from an earlier request."""
    return _validated_query(serializer_class, query_string, tuple(sorted(context.items())))


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(required=False, help_text="The parameter at fault.")
    section = serializers.CharField(required=False, help_text="The section that failed.")
    code = serializers.CharField(help_text="Stable error code, e.g. VALIDATION_ERROR.")
    message = serializers.CharField()


class ErrorEnvelopeSerializer(serializers.Serializer):
    """The body of every error response."""

    success = serializers.BooleanField(default=False)
    message = serializers.CharField()
    errors = ErrorItemSerializer(many=True)  # type: ignore[assignment]  # a field, not .errors


def envelope_serializer(name: str, data: serializers.Field) -> type[serializers.Serializer]:
    """``{"success": true, "data": <data>}`` (for the OpenAPI schema)."""
    return type(
        name, (serializers.Serializer,), {"success": serializers.BooleanField(), "data": data}
    )


def error_responses(descriptions: Mapping[int, str]) -> dict[int, Any]:
    """OpenAPI responses in the error envelope, one per status code."""
    from drf_spectacular.utils import OpenApiResponse

    return {
        code: OpenApiResponse(ErrorEnvelopeSerializer, description=text)
        for code, text in descriptions.items()
    }
