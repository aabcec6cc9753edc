"""The API docs, offline: ReDoc without its CDN logo, and summaries for every operation.

ReDoc's bundle (served locally by drf-spectacular-sidecar) still shows the
Redocly logo from ``cdn.redoc.ly`` in its menu footer, and drf-spectacular's
ReDoc page loads Google Fonts. The template in ``templates/drf_spectacular``
drops the fonts (ReDoc falls back to system fonts); this module serves the
bundle with the logo pointed at a local file, so the page makes no request
beyond this server.
"""

from __future__ import annotations

import functools
from pathlib import Path

import drf_spectacular_sidecar
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.views.decorators.http import require_GET
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from . import deprecation

REDOC_BUNDLE = "redoc/bundles/redoc.standalone.js"
CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
LOCAL_LOGO = "api/redoc-logo.svg"


ASSET_MAX_AGE_S = 86_400  # the docs' bundled assets change only with a release


@functools.cache
def _patched_bundle() -> bytes:
    root = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"
    bundle = (root / REDOC_BUNDLE).read_bytes()
    return bundle.replace(CDN_LOGO, static(LOCAL_LOGO).encode())


@require_GET
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """ReDoc's standalone bundle, with its one external URL made local."""
    response = HttpResponse(_patched_bundle(), content_type="text/javascript")
    response["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE_S}"
    return response


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, with a summary for every operation.

    Where a view names none, the first line of its docstring is the summary,
    so ReDoc and Swagger UI show sentences rather than operation ids.
    """

    def get_summary(self) -> str | None:
        """The declared summary, or the first line of the action's docstring."""
        declared = super().get_summary()
        if declared:
            return declared
        description = self.get_description() or ""
        first = description.strip().splitlines()[0] if description.strip() else ""
        return first.rstrip(".") or None

    def is_deprecated(self) -> bool:
        """Declared deprecated, or a legacy endpoint once ``LEGACY_DEPRECATED_SINCE`` is set."""
        if super().is_deprecated():
            return True
        legacy = getattr(self.view, "is_legacy_operation", None)
        return bool(legacy is not None and legacy() and deprecation.is_deprecated())
