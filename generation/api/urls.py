from django.urls import path

from . import views

urlpatterns = [
    path("generate", views.GenerationCreateApi.as_view(), name="api-generate"),
    path("generate/quote", views.GenerationQuoteApi.as_view(), name="api-generate-quote"),
    path("generate/models", views.GenerationModelListApi.as_view(), name="api-generate-models"),
    path("generate/webhooks/fal", views.FalWebhookReceiveApi.as_view(), name="api-generation-webhook-fal"),
    path(
        "generate/webhooks/replicate",
        views.ReplicateWebhookReceiveApi.as_view(),
        name="api-generation-webhook-replicate",
    ),
    path("generate/webhooks/luma", views.LumaCallbackReceiveApi.as_view(), name="api-generation-callback-luma"),
    path("generate/<str:job_id>", views.GenerationJobDetailApi.as_view(), name="api-generation-job"),
    path("generate/<str:job_id>/cancel", views.GenerationJobCancelApi.as_view(), name="api-generation-cancel"),
]
