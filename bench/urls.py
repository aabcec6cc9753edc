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
    path("bench/conventional/lists/<str:section>", views.ConventionalList.as_view()),
    path("bench/conventional/trainers/<int:pk>/profile", views.TrainerProfile.as_view()),
    path("bench/conventional/trainers/<int:pk>/overview", views.TrainerOverview.as_view()),
    path("bench/conventional/trainers/<int:pk>/sessions", views.TrainerSessions.as_view()),
    path("bench/conventional/trainers/<int:pk>/allocations", views.TrainerAllocations.as_view()),
    path("bench/conventional/trainers/<int:pk>/payout-claims", views.TrainerPayoutClaims.as_view()),
    path("bench/conventional/students/<int:pk>/overview", views.StudentOverview.as_view()),
    path("bench/conventional/students/<int:pk>/sessions", views.StudentSessions.as_view()),
    path("bench/conventional/students/<int:pk>/allocations", views.StudentAllocations.as_view()),
    path("bench/conventional/students/<int:pk>/courses", views.StudentCourses.as_view()),
    *service_urlpatterns,
]
