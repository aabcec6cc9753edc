"""The service's URLs plus what the benchmark compares it with."""

from django.urls import include, path
from django.views.decorators.cache import cache_page

from bench.reference import views
from config.urls import urlpatterns as service_urlpatterns

CACHE_PAGE_SECONDS = 300

conventional_urlpatterns = [
    path("homepage", views.ConventionalHomepage.as_view()),
    path("homepage-cached", cache_page(CACHE_PAGE_SECONDS)(views.ConventionalHomepage.as_view())),
    path("lists/<str:section>", views.ConventionalList.as_view()),
    path("trainers/<int:pk>/profile", views.TrainerProfile.as_view()),
    path("trainers/<int:pk>/overview", views.TrainerOverview.as_view()),
    path("trainers/<int:pk>/sessions", views.TrainerSessions.as_view()),
    path("trainers/<int:pk>/allocations", views.TrainerAllocations.as_view()),
    path("trainers/<int:pk>/payout-claims", views.TrainerPayoutClaims.as_view()),
    path("students/<int:pk>/overview", views.StudentOverview.as_view()),
    path("students/<int:pk>/sessions", views.StudentSessions.as_view()),
    path("students/<int:pk>/allocations", views.StudentAllocations.as_view()),
    path("students/<int:pk>/courses", views.StudentCourses.as_view()),
]

# The service's paths are resolved after three patterns, as good as in production
# (after two): the conventional build's dozen sit behind one prefix.
urlpatterns = [
    path("bench/ceiling", views.ceiling),
    path("bench/ceiling-redis", views.ceiling_with_redis),
    path("bench/conventional/", include(conventional_urlpatterns)),
    *service_urlpatterns,
]
