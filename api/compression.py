"""gzip for every other response, honouring the client's q-values.

Django's ``GZipMiddleware`` compresses whenever ``Accept-Encoding`` mentions
gzip, even ``gzip;q=0`` (a refusal, RFC 9110 §12.5.3). The batch responses
choose their own coding (``aggregation.encoding``) and set
``Content-Encoding``, which the middleware leaves alone; when they choose none
because the client refused them all, this keeps the middleware from
compressing them anyway.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import patch_vary_headers

from aggregation.encoding import choose_encoding


class RefusableGZipMiddleware(GZipMiddleware):
    """``GZipMiddleware`` that compresses only when the client's q-value for gzip is above 0."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        """Leave the response as it is when gzip is refused; otherwise as Django does."""
        if choose_encoding(request.META.get("HTTP_ACCEPT_ENCODING", ""), ("gzip",)) != "gzip":
            if not response.has_header("Content-Encoding"):
                patch_vary_headers(response, ("Accept-Encoding",))
            return response
        return super().process_response(request, response)
