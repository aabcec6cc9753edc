from django.urls import path

from . import views

urlpatterns = [
    path("homepage", views.HomepageView.as_view(), name="homepage"),
    path("products/featured", views.FeaturedProductsView.as_view(), name="products-featured"),
    path("products/new-arrivals", views.NewArrivalsView.as_view(), name="products-new-arrivals"),
    path("stores/featured", views.FeaturedStoresView.as_view(), name="stores-featured"),
    path("events/featured", views.FeaturedEventsView.as_view(), name="events-featured"),
    path("offers", views.OffersView.as_view(), name="offers"),
]
