from django.urls import path

from . import views

urlpatterns = [
    path("generate", views.GenerateView.as_view(), name="api-generate"),
    path("generate/quote", views.QuoteView.as_view(), name="api-generate-quote"),
    path("generate/models", views.ModelsView.as_view(), name="api-generate-models"),
    path("generate/webhooks/fal", views.FalWebhookView.as_view(), name="api-generation-webhook-fal"),
    path("generate/webhooks/replicate", views.ReplicateWebhookView.as_view(), name="api-generation-webhook-replicate"),
    path("generate/webhooks/luma", views.LumaCallbackView.as_view(), name="api-generation-callback-luma"),
    path("generate/<str:job_id>", views.GenerationJobView.as_view(), name="api-generation-job"),
    path("generate/<str:job_id>/cancel", views.GenerationCancelView.as_view(), name="api-generation-cancel"),
]
