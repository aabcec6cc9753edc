from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=False)
router.register("trainers", views.TrainerViewSet, basename="trainer")
router.register("sessions", views.SessionViewSet, basename="session")
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("payout-claims", views.PayoutClaimViewSet, basename="payout-claim")

urlpatterns = router.urls
