"""Admin for marks (the groups room): characters that are not faces, marked by a box and followed in a task.

Marks are made by contributors on the clip page or the API (`mark_create` checks the box and the clip), so
the admin does not add or edit them; it shows their runs, and re-runs or fails them through the services.
"""

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import ngettext

from characters.groups import services
from characters.models import Mark
from common.admin_html import progress_bar
from common.exceptions import ServiceError


@admin.register(Mark)
class MarkAdmin(admin.ModelAdmin):
    list_display = ("__str__", "clip", "label", "status_display", "group", "progress", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("clip", "group", "created_by")
    search_fields = ("group__label", "clip__original_filename", "created_by__username")
    date_hierarchy = "created_at"
    actions = ["rerun_marks", "fail_marks"]
    fields = (
        "clip",
        "group",
        "label",
        "created_by",
        "seconds",
        "box",
        "status_display",
        "progress",
        "error_message",
        "followed_samples",
        "found_samples",
        "clips_searched",
        "attempts",
        "task_id",
        "heartbeat_at",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # a box is drawn on the clip page or sent to the API, where it is checked

    @admin.display(description="Label", ordering="group__label")
    def label(self, mark):
        return mark.group.label if mark.group else "—"

    @admin.display(description="Status", ordering="status")
    def status_display(self, mark):
        label = format_html('<span class="cps-status cps-status--{}">{}</span>', mark.status, mark.get_status_display())
        if mark.status not in Mark.IN_PROGRESS_STATUSES:
            return label
        return format_html("{}{}", label, progress_bar(mark.progress))

    def _each(self, request, queryset, act, logged: str, done: tuple[str, str]) -> None:
        """Run `act` (a service) on each mark: a refusal is reported per mark, the rest logged and counted."""
        count = 0
        for mark in queryset:
            try:
                act(mark=mark, user=request.user)
            except ServiceError as exc:
                self.message_user(request, f"{mark}: {exc.message}", messages.WARNING)
                continue
            self.log_change(request, mark, logged)
            count += 1
        self.message_user(request, ngettext(*done, count) % {"count": count}, messages.SUCCESS)

    @admin.action(description="Re-run (follow and search again)", permissions=["change"])
    def rerun_marks(self, request, queryset):
        self._each(
            request,
            queryset,
            services.mark_rerun,
            "Re-run requested.",
            ("%(count)d mark queued again.", "%(count)d marks queued again."),
        )

    @admin.action(description="Mark failed (a run known to be dead)", permissions=["change"])
    def fail_marks(self, request, queryset):
        self._each(
            request,
            queryset,
            services.mark_fail,
            "Marked failed by an admin.",
            ("%(count)d mark failed.", "%(count)d marks failed."),
        )
