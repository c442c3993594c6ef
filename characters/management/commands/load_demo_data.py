"""Demo data for a first look: three users, a story and two clips that go through the real upload
and extraction services, so a newcomer sees the pipeline's candidate frames at once.

The clips are rendered on the spot by common.testing.clips from scikit-image's public-domain
astronaut photo (nothing is downloaded). Running it again changes nothing that is already there:
users, story and clips are found by name; a demo clip whose extraction failed is queued again.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from characters import services
from characters.models import Clip, Story
from common.testing import clips

# Documented in the README; only used with DEBUG on (local demos) unless --password is given.
DEMO_PASSWORD = "character-demo"  # noqa: S105 - a published demo login, refused with DEBUG off
DEMO_USERS = [
    # username, is_staff/superuser, role
    ("admin", True, "staff admin: /admin/, pins, votes"),
    ("alice", False, "contributor"),
    ("bob", False, "contributor"),
]
STORY_SLUG = "the-astronaut"
STORY_TITLE = "The Astronaut"
STORY_DESCRIPTION = (
    "A demo story: an astronaut seen in two clips. The first is sharp, well lit and frontal; the second "
    "has good seconds, then blur, low light, the face leaving the frame and a shot with nobody in it, "
    "so the extraction pipeline has something to sort."
)
DEMO_CLIPS = [
    # file name, how it is made, uploader
    ("astronaut-frontal.mp4", clips.good_frontal, "alice"),
    ("astronaut-mixed.mp4", clips.mixed_defects, "bob"),
]


class Command(BaseCommand):
    help = "Create demo users, a demo story and two extracted demo clips (idempotent); print the logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help=f"Password for the demo users. Default: {DEMO_PASSWORD!r}, allowed only with DEBUG on.",
        )

    def handle(self, *args, password: str | None = None, **options):
        if not password:
            if not settings.DEBUG:
                raise CommandError(
                    "DEBUG is off: refusing to give demo users the published demo password. Pass --password."
                )
            password = DEMO_PASSWORD
        users = {name: self._user(name, staff, password) for name, staff, _ in DEMO_USERS}
        story = self._story(users["admin"])
        for filename, make, uploader in DEMO_CLIPS:
            self._clip(story, filename, make, users[uploader])
        self._report(story, password)

    def _user(self, username: str, staff: bool, password: str):
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com", "is_staff": staff, "is_superuser": staff}
        )
        if not user.check_password(password):
            user.set_password(password)  # so the printed login always works
            user.save(update_fields=["password"])
        if created:
            self.stdout.write(f"Created user {username}")
        return user

    def _story(self, admin) -> Story:
        story = Story.objects.filter(slug=STORY_SLUG).first()
        if story is None:
            story = services.story_create(title=STORY_TITLE, description=STORY_DESCRIPTION, created_by=admin)
            self.stdout.write(f"Created story {story.title!r}")
        return story

    def _clip(self, story: Story, filename: str, make, uploader) -> None:
        clip = story.clips.filter(original_filename=filename).first()
        if clip is not None:
            if clip.status == Clip.Status.FAILED:
                self.stdout.write(f"Re-running the extraction of {filename} (it failed: {clip.error_message})")
                self._guard(lambda: services.clip_request_extraction(clip=clip, user=clip.uploader))
            return
        self.stdout.write(f"Rendering and uploading {filename} ...")
        with tempfile.TemporaryDirectory(prefix="demo-clip-") as tmp:
            path = make(Path(tmp) / filename)
            with open(path, "rb") as fh:
                upload = File(fh, name=filename)
                # Eager tasks (the default) extract right here; with a worker this only queues it.
                self._guard(lambda: services.clip_create(story=story, uploader=uploader, upload=upload))

    def _guard(self, action) -> None:
        """Run an upload/extraction; an extraction error is kept on the clip and reported, not fatal."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the clip row records the reason, shown in the summary
            self.stderr.write(self.style.WARNING(f"  extraction did not finish: {exc}"))

    def _report(self, story: Story, password: str) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo story: {story.title} -> {story.get_absolute_url()}"))
        for clip in story.clips.order_by("position"):
            line = f"  clip {clip.position} {clip.original_filename}: {clip.status}"
            if clip.status == Clip.Status.READY:
                line += f", {clip.candidates.count()} candidate frames"
            elif clip.status == Clip.Status.FAILED:
                line += f" ({clip.error_message})"
            else:
                line += " (queued for the Celery worker: `make worker`)"
            self.stdout.write(line)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Logins (local demo only):"))
        for username, _, role in DEMO_USERS:
            self.stdout.write(f"  {username:<6} / {password}   {role}")
