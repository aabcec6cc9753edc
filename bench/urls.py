"""The service's URLs plus what the benchmark compares it with."""

from django.urls import path
from django.views.decorators.cache import cache_page

from bench.reference import views
from config.urls import urlpatterns as service_urlpatterns

CACHE_PAGE_SECONDS = 300

urlpatterns = [
    path("bench/ceiling", views.ceiling),
    path("bench/ceiling-redis", views.ceiling_with_redis),
    path("bench/conventional/homepage", views.ConventionalHomepage.as_view()),
    path(
        "bench/conventional/homepage-cached",
        cache_page(CACHE_PAGE_SECONDS)(views.ConventionalHomepage.as_view()),
    ),
    path("bench/conventional/trainers/<int:pk>/overview", views.TrainerOverview.as_view()),
    path("bench/conventional/trainers/<int:pk>/sessions", views.TrainerSessions.as_view()),
    path("bench/conventional/trainers/<int:pk>/allocations", views.TrainerAllocations.as_view()),
    path("bench/conventional/trainers/<int:pk>/payout-claims", views.TrainerPayoutClaims.as_view()),
    *service_urlpatterns,
]
