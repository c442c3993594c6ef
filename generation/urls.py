from django.urls import path

from . import views

urlpatterns = [
    path("stories/<int:story_id>/create/", views.create, name="generation-create"),
    path("generate/<str:job_id>/", views.job_detail, name="generation-job"),
]
