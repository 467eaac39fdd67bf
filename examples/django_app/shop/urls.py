"""Routes; the middleware names spans after these templates (``GET /products/<int:product_id>/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("products/<int:product_id>/", views.product),
    path("api/upload/", views.upload),
]
