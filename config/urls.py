"""URL configuration: the API under /api/v1/, docs under /api/, admin under /admin/."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.docs import redoc_bundle
from api.errors import api_not_found
from caching.views import cache_dashboard
from config.health import ReadinessView, liveness, metrics

urlpatterns = [
    path("admin/cache/", admin.site.admin_view(cache_dashboard), name="cache-dashboard"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("homepage.urls")),
    path("api/v1/", include("trainers.urls")),
    path("api/v1/", include("students.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("health/live", liveness, name="health-live"),
    path("health/ready", ReadinessView.as_view(), name="health-ready"),
    path("metrics", metrics, name="prometheus-metrics"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/redoc-assets/bundles/redoc.standalone.js", redoc_bundle, name="redoc-bundle"),
    # Anything else under /api/ is a JSON 404, in every mode (DEBUG's page lists every URL).
    re_path(r"^api/", api_not_found),
]

handler400 = "api.errors.bad_request_view"
handler403 = "api.errors.permission_denied_view"
handler404 = "api.errors.not_found_view"
handler500 = "api.errors.server_error_view"
