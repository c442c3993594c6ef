"""Admin for voting: sessions with live tallies, start / end / cancel / runoff, override with a reason."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from characters.models import Story
from common.admin_html import progress_bar, thumbnail
from common.exceptions import ServiceError

from . import selectors, services
from .models import DEFAULT_CHARACTER_SLOT, CharacterSubmission, SubmissionFrame, Vote, VotingSession


class SubmissionFrameInline(admin.TabularInline):
    model = SubmissionFrame
    extra = 0
    fields = ("position", "frame", "preview")
    readonly_fields = ("position", "frame", "preview")
    can_delete = False

    @admin.display(description="Frame")
    def preview(self, link):
        return thumbnail(link.frame.thumbnail, f"Frame {link.position}", height=64)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CharacterSubmission)
class CharacterSubmissionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "character_name",
        "story",
        "slot_label",
        "submitter",
        "status",
        "vote_count",
        "created_at",
    )
    # By character group: a design's stored slot is an internal key once the frames name a group.
    list_filter = ("status", ("character_group", admin.RelatedOnlyFieldListFilter))
    search_fields = ("character_name", "style_description", "submitter__username", "story__title")
    list_select_related = ("story", "submitter", "character_group")
    inlines = [SubmissionFrameInline]
    actions = ["withdraw_submissions", "lock_submissions"]

    # Read-only: a submission changes only through voting.services (its rules, its votes, its vote's
    # outcome). The change form shows it; the actions below call the services.
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.concrete_fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_act_permission(self, request):
        """Staff with the right to change submissions may run the actions (which go through the services)."""
        return request.user.is_staff and request.user.has_perm("voting.change_charactersubmission")

    def _each(self, request, queryset, act, done: str) -> None:
        for submission in queryset:
            try:
                act(submission)
            except ServiceError as exc:
                self.message_user(request, f"Submission {submission.pk}: {exc.message}", messages.ERROR)
            else:
                self.log_change(request, submission, done)
                self.message_user(request, f"Submission {submission.pk}: {done}.", messages.SUCCESS)

    @admin.action(description="Withdraw selected submissions", permissions=["act"])
    def withdraw_submissions(self, request, queryset):
        self._each(
            request, queryset, lambda s: services.submission_withdraw(submission=s, user=request.user), "withdrawn"
        )

    @admin.action(
        description="Lock selected as characters (an open vote is won by admin decision)", permissions=["act"]
    )
    def lock_submissions(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda s: services.submission_lock_by_admin(submission_id=s.pk, admin=request.user),
            "locked as a character",
        )


class OverrideForm(forms.Form):
    submission = forms.ModelChoiceField(
        queryset=CharacterSubmission.objects.none(), label="Winner", widget=forms.RadioSelect
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept with the result.")

    def __init__(self, *args, session: VotingSession, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["submission"].queryset = session.submissions.all()  # type: ignore[attr-defined]  # a ModelChoiceField
        # What the admin decides on, per design: its votes so far and its first frame (most votes first).
        status = selectors.session_status(session)
        self.total_votes = status["total_votes"]
        self.rows = status["submissions"]
        for row in self.rows:
            links = row["submission"].frame_links.all()  # prefetched in frame order
            first = links[0].frame if links else None
            row["thumbnail_url"] = first.thumbnail.url if first is not None and first.thumbnail else ""


class DeadlockForm(forms.Form):
    """The seed's deadlock remedies besides override and runoff: more time, a lower threshold, or both."""

    extend_hours = forms.IntegerField(
        min_value=1,
        max_value=72,
        required=False,
        label="Extend by (hours)",
        help_text="From the current end (or from now, if it has passed).",
    )
    win_threshold_percent = forms.IntegerField(
        min_value=1,
        max_value=49,
        required=False,
        label="Lower the win threshold to (%)",
        help_text="A design wins early with floor(votes x threshold) + 1 votes, once the quorum is met; "
        "50 is a majority.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Kept in the admin log.")

    def clean(self):
        data = super().clean()
        if data.get("extend_hours") is None and data.get("win_threshold_percent") is None:
            raise forms.ValidationError("Extend the vote, lower its threshold, or both.")
        return data


class StartSessionForm(forms.Form):
    story = forms.ModelChoiceField(queryset=Story.objects.order_by("title"))
    character_slot = forms.SlugField(
        initial=DEFAULT_CHARACTER_SLOT,
        help_text="The character: a group's label as a slug (“Character A” is character-a), or the slot of "
        "designs from before identity.",
    )
    duration_hours = forms.IntegerField(min_value=1, max_value=72, required=False, help_text="Default from settings.")


@admin.register(VotingSession)
class VotingSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "story", "slot_label", "status", "tally", "ends_at", "winner", "decided_by")
    list_filter = ("status", "decided_by", ("group", admin.RelatedOnlyFieldListFilter))
    search_fields = ("story__title",)
    list_select_related = ("story", "winner", "group")
    readonly_fields = (
        "story",
        "group",
        "character_slot",
        "runoff_of",
        "starts_at",
        "ends_at",
        "win_threshold_percent",
        "status",
        "winner",
        "decided_by",
        "decided_by_user",
        "decision_reason",
        "started_by",
        "ended_at",
        "tally_chart",
    )
    exclude = ("submissions",)
    actions = ["end_now", "cancel_sessions", "start_runoff"]
    change_form_template = "admin/voting/votingsession/change_form.html"
    change_list_template = "admin/voting/votingsession/change_list.html"

    def has_add_permission(self, request):
        return False  # sessions start through the "Start a vote" page, which applies the rules

    @admin.display(description="Votes")
    def tally(self, session):
        status = selectors.session_status(session)
        return " · ".join(f"#{row['id']}: {row['votes']}" for row in status["submissions"]) or "-"

    @admin.display(description="Tallies")
    def tally_chart(self, session):
        status = selectors.session_status(session)
        rows = format_html_join(
            "",
            '<div class="cps-tally"><strong>#{} {}</strong> — {} votes ({}%){}</div>',
            (
                (
                    r["id"],
                    r["character_name"],
                    r["votes"],
                    r["percentage"],
                    progress_bar(r["percentage"], "cps-tally__bar"),
                )
                for r in status["submissions"]
            ),
        )
        return format_html("<div>Total: {}</div>{}", status["total_votes"], rows)

    def get_urls(self):
        urls = super().get_urls()
        custom = [
            path("start/", self.admin_site.admin_view(self.start_view), name="voting_votingsession_start"),
            path(
                "<path:object_id>/override/",
                self.admin_site.admin_view(self.override_view),
                name="voting_votingsession_override",
            ),
            path(
                "<path:object_id>/deadlock/",
                self.admin_site.admin_view(self.deadlock_view),
                name="voting_votingsession_deadlock",
            ),
        ]
        return custom + urls

    def _run(self, request, fn, success: str) -> bool:
        try:
            fn()
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return False
        self.message_user(request, success, messages.SUCCESS)
        return True

    def start_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = StartSessionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                session = services.session_start(
                    story=data["story"],
                    character_slot=data["character_slot"],
                    started_by=request.user,
                    duration_hours=data["duration_hours"],
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                self.log_addition(request, session, f"Started vote for {session.slot_label}")
                self.message_user(request, f"Vote {session.pk} started.", messages.SUCCESS)
                return redirect(reverse("admin:voting_votingsession_change", args=[session.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": "Start a vote",
        }
        return render(request, "admin/voting/votingsession/form_page.html", context)

    def override_view(self, request, object_id):
        session = get_object_or_404(VotingSession, pk=unquote(object_id))
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        form = OverrideForm(request.POST or None, session=session)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.session_override(
                    session_id=session.pk,
                    submission_id=data["submission"].pk,
                    admin=request.user,
                    reason=data["reason"],
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                self.log_change(request, session, f"Override: winner #{data['submission'].pk} — {data['reason']}")
                self.message_user(request, "Winner set by admin decision.", messages.SUCCESS)
                return redirect(reverse("admin:voting_votingsession_change", args=[session.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "original": session,
            "title": f"Override the result of vote {session.pk}",
        }
        return render(request, "admin/voting/votingsession/override_form.html", context)

    def deadlock_view(self, request, object_id):
        session = get_object_or_404(VotingSession, pk=unquote(object_id))
        if not self.has_change_permission(request, session):
            raise PermissionDenied
        form = DeadlockForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data, done = form.cleaned_data, []
            try:
                if data["extend_hours"] is not None:
                    session = services.session_extend(
                        session_id=session.pk, admin=request.user, hours=data["extend_hours"], reason=data["reason"]
                    )
                    done.append(f"extended by {data['extend_hours']} h to {session.ends_at:%Y-%m-%d %H:%M} UTC")
                if data["win_threshold_percent"] is not None:
                    session = services.session_lower_threshold(
                        session_id=session.pk,
                        admin=request.user,
                        percent=data["win_threshold_percent"],
                        reason=data["reason"],
                    )
                    done.append(f"win threshold lowered to {data['win_threshold_percent']} %")
            except ServiceError as exc:
                form.add_error(None, exc.message)
            if done:
                self.log_change(request, session, f"Deadlock: {'; '.join(done)} — {data['reason']}")
            if done and not form.errors:
                self.message_user(request, f"Vote {session.pk}: {'; '.join(done)}.", messages.SUCCESS)
                return redirect(reverse("admin:voting_votingsession_change", args=[session.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "original": session,
            "title": f"Break the deadlock of vote {session.pk}",
        }
        return render(request, "admin/voting/votingsession/deadlock_form.html", context)

    def _each(self, request, queryset, fn, verb):
        for session in queryset:
            if self._run(request, lambda s=session: fn(s), f"Vote {session.pk}: {verb}."):
                self.log_change(request, session, verb)

    @admin.action(description="End selected votes now (decide as at expiry)", permissions=["change"])
    def end_now(self, request, queryset):
        self._each(request, queryset, lambda s: services.session_end_now(session_id=s.pk, admin=request.user), "ended")

    @admin.action(description="Cancel selected votes", permissions=["change"])
    def cancel_sessions(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda s: services.session_cancel(session_id=s.pk, admin=request.user, reason="Cancelled in the admin."),
            "cancelled",
        )

    @admin.action(description="Send tied leaders to a runoff", permissions=["change"])
    def start_runoff(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda s: services.session_start_runoff(session_id=s.pk, admin=request.user),
            "runoff started",
        )


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "submission", "voter", "created_at")
    list_filter = ("session__status",)
    search_fields = ("voter__username",)
    list_select_related = ("session__story", "submission__story", "voter")

    # The votes table is the record of who voted: nobody edits it by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
