"""Admin for generation jobs: what was sent, what came back, and the score."""

import json

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils.html import format_html

from common.charts import score_bar_chart
from common.exceptions import ServiceError

from . import services
from .models import GenerationJob, WebhookDelivery


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ("job_id", "story", "mode", "status", "consistency_score", "cost_usd", "requester", "created_at")
    list_filter = ("status", "mode", "provider")
    search_fields = ("job_id", "provider_request_id", "story__title", "requester__username")
    list_select_related = ("story", "requester")
    readonly_fields = [f.name for f in GenerationJob._meta.fields] + ["characters", "payload", "player", "score_chart"]
    exclude = ("arguments",)
    actions = ["cancel_jobs"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Sent to the provider")
    def payload(self, job):
        return format_html('<pre class="cps-json cps-json--wrap">{}</pre>', json.dumps(job.arguments, indent=2))

    @admin.display(description="Video")
    def player(self, job):
        if not job.video:
            return "-"
        return format_html('<video src="{}" controls class="cps-video"></video>', job.video.url)

    @admin.display(description="Per-frame consistency")
    def score_chart(self, job):
        if not job.frame_scores:
            return "-"
        # The job page's chart (common.charts geometry, the generation template): SVG attributes, no CSS.
        chart = score_bar_chart(
            [f["score"] for f in job.frame_scores], labels=[f"{f['seconds']:.1f}s" for f in job.frame_scores]
        )
        return render_to_string(
            "generation/_bar_chart.html", {"chart": chart, "label": "Consistency per sampled frame"}
        )

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            try:
                services.generation_cancel(job=job, user=request.user)
            except ServiceError as exc:
                self.message_user(request, f"{job.job_id}: {exc.message}", messages.WARNING)
            else:
                self.log_change(request, job, "Cancelled")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("provider", "request_id", "outcome", "received_at")
    list_filter = ("provider", "outcome")
    search_fields = ("request_id",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
