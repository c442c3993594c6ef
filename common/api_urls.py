from django.urls import path

from . import api_views

urlpatterns = [
    path("auth/token", api_views.AuthTokenCreateApi.as_view(), name="api-auth-token"),
]
