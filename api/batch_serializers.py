"""Generic serializers: section-list and fieldset parameters, envelopes for OpenAPI."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.serializers import PolymorphicProxySerializerExtension
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from aggregation.delivery import InvalidKnown, parse_known
from aggregation.sections import SectionRegistry, UnknownSection
from aggregation.sparse import InvalidFieldset, parse_fieldset

from .serializers import ErrorItemSerializer

MAX_LIST_PARAM_LENGTH = 2_000


class _CommaListField(serializers.CharField):
    """A comma-separated query parameter; blank entries are ignored."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_LIST_PARAM_LENGTH)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def split(self, data: Any) -> list[str]:
        raw = super().to_internal_value(data)
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not parts:
            raise serializers.ValidationError("Must name at least one entry.")
        return parts


class SectionListField(_CommaListField):
    """``sections=events,trending_stores``: canonical ids; unknown names are an error.

    Reads the registry from the serializer context key ``registry``.
    """

    def to_internal_value(self, data: Any) -> list[str]:  # type: ignore[override]
        registry: SectionRegistry = self.context["registry"]
        try:
            return [s.id for s in registry.resolve(self.split(data))]
        except UnknownSection as exc:
            raise serializers.ValidationError(
                f"Unknown section(s): {', '.join(exc.names)}. "
                f"Valid: {', '.join(registry.ids)} (snake_case accepted)."
            ) from exc


class FieldsetField(_CommaListField):
    """``fields=justForYou.items.name,events.total``: a validated sparse fieldset."""

    def to_internal_value(self, data: Any) -> dict:  # type: ignore[override]
        paths = self.split(data)
        try:
            return {
                "paths": sorted(set(paths)),
                "spec": parse_fieldset(paths, self.context["registry"]),
            }
        except InvalidFieldset as exc:
            raise serializers.ValidationError(str(exc)) from exc


class KnownField(_CommaListField):
    """``known=overview:<version>,sessions:<version>``: the section versions a client holds.

    Reads the registry from the serializer context key ``registry``. Returns
    ``{canonical section id: version}``.
    """

    def to_internal_value(self, data: Any) -> dict[str, str]:  # type: ignore[override]
        try:
            return parse_known(self.split(data), self.context["registry"])
        except InvalidKnown as exc:
            raise serializers.ValidationError(str(exc)) from exc


KNOWN_HELP = (
    "Comma-separated <section>:<version> pairs from an earlier response's "
    "metadata.sectionVersions; each section still at that version is sent as "
    '{"id", "notModified": true, "version"}.'
)


class BatchMetadataSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    userId = serializers.CharField(
        required=False, help_text="The caller, for a personalised response; absent otherwise."
    )
    cacheKey = serializers.CharField()
    ttl = serializers.IntegerField(help_text="Seconds the response is cached for.")
    fromCache = serializers.BooleanField()
    stale = serializers.BooleanField(
        help_text="True when a stale copy was served (refresh under way, or recomputing failed)."
    )
    executionTime = serializers.FloatField(help_text="Milliseconds spent answering.")
    partialFailure = serializers.BooleanField()
    sectionVersions = serializers.DictField(
        child=serializers.CharField(),
        help_text="Each section's version: changes exactly when the section's content does. "
        "Send them back as known= to receive unchanged sections as notModified.",
    )
    bodyVersion = serializers.CharField(
        help_text="The version of every section together: the snapshot the versions belong to."
    )


class NotModifiedSectionSerializer(serializers.Serializer):
    """A section the client holds at this version (``known=``), in place of its content."""

    id = serializers.CharField()
    notModified = serializers.BooleanField()
    version = serializers.CharField()


def section_serializer(
    name: str, item: type[serializers.Serializer]
) -> type[serializers.Serializer]:
    """A section object's schema (seed 004 §1.3) with typed items."""
    attrs = {
        "id": serializers.CharField(),
        "title": serializers.CharField(required=False),
        "type": serializers.CharField(required=False),
        "items": item(many=True, required=False),
        "total": serializers.IntegerField(required=False),
        "hasMore": serializers.BooleanField(required=False),
        "lastUpdated": serializers.DateTimeField(required=False),
        "error": serializers.BooleanField(
            required=False, help_text="Present and true when the section failed."
        ),
        "notModified": serializers.BooleanField(
            required=False,
            help_text="Present and true when known= named this section at its current version: "
            "only id, notModified and version are sent.",
        ),
        "version": serializers.CharField(
            required=False, help_text="The section's version, with notModified."
        ),
        "__doc__": "A section; a sparse fieldset or known= may leave out any key but id.",
    }
    return type(name, (serializers.Serializer,), attrs)


class BootstrapQuerySerializer(serializers.Serializer):
    fresh = serializers.BooleanField(
        default=False, help_text="Bypass the cache read (still cached afterwards)."
    )
    known = KnownField(help_text=KNOWN_HELP)


class SnapshotSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=["exported", "single-transaction"],
        help_text="exported: parallel sections on one exported PostgreSQL snapshot; "
        "single-transaction: sequential sections in one transaction.",
    )
    id = serializers.CharField(allow_null=True)


class BootstrapMetadataSerializer(BatchMetadataSerializer):
    snapshot = SnapshotSerializer(
        required=False, help_text="The database snapshot every section was read from."
    )


class _OneOf(PolymorphicProxySerializer):
    """``oneOf`` its serializers, as is (no discriminator, no list of them).

    Declared as a field, a serializer is deep-copied by re-creating it from its
    arguments, without ``many`` (DRF takes it out first): ``many=False`` is
    put back on every creation, as drf-spectacular needs it to keep a list
    serializer among the alternatives as it is.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs["many"] = False
        return super().__new__(cls, *args, **kwargs)


class _OneOfExtension(PolymorphicProxySerializerExtension):
    """drf-spectacular's own handling, for the subclass (extensions match exact classes)."""

    target_class = "api.batch_serializers._OneOf"


def bootstrap_response_serializer(
    name: str, sections: dict[str, serializers.Field]
) -> type[serializers.Serializer]:
    """A bootstrap: its sections (each may be ``notModified``) and ``metadata`` inside ``data``."""
    either = {
        section_id: _OneOf(
            component_name=f"{name}{section_id[0].upper()}{section_id[1:]}",
            serializers=[cast(Any, field), NotModifiedSectionSerializer],
            resource_type_field_name=None,
            allow_null=getattr(field, "allow_null", False),  # a missing subject's overview
        )
        for section_id, field in sections.items()
    }
    data = type(
        f"{name}Data",
        (serializers.Serializer,),
        {**either, "metadata": BootstrapMetadataSerializer()},
    )
    return type(
        f"{name}Response",
        (serializers.Serializer,),
        {
            "success": serializers.BooleanField(),
            "data": data(),
            "errors": ErrorItemSerializer(many=True, required=False),
            "version": serializers.CharField(),
        },
    )
