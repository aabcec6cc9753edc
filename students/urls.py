from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=False)
router.register("students", views.StudentViewSet, basename="student")

urlpatterns = router.urls
