"""Score how consistently a video shows a character: the method generated jobs are scored with.

    python manage.py score_consistency VIDEO (--character CHARACTER_ID | --references IMG [IMG ...])
                                       [--samples N] [--json]

--character takes a locked character (its `character_id`, or its database id) and uses its reference
images and DNA palette; --references takes image files and measures the palette from them the same
way a Character DNA's is measured. Any clip can be scored, generated here or not, so admins can audit
a story's existing clips. A video that cannot be read, references without a face or an unknown
character exit non-zero with the reason on stderr. Nothing is written anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from characters.dna.selectors import character_queryset
from characters.models import Character
from characters.vision.video import InvalidVideo, open_capture
from generation.consistency import (
    DEFAULT_SAMPLES,
    MAX_SAMPLES,
    MIN_SAMPLES,
    SUBJECT_FACE,
    ConsistencyResult,
    NoReferenceFace,
    UnreadableReference,
    character_references,
    load_references,
    palette_from_references,
    score_video,
    subject_of,
)


def sample_count(text: str) -> int:
    value = int(text)
    if not MIN_SAMPLES <= value <= MAX_SAMPLES:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Score a video's character consistency (0-100, and per sampled frame) against a character or images."

    def add_arguments(self, parser):
        parser.add_argument("video", type=Path, help="the video file to score (MP4, MOV, WebM)")
        against = parser.add_mutually_exclusive_group(required=True)
        against.add_argument("--character", metavar="CHARACTER_ID", help="a locked character's character_id (or id)")
        against.add_argument(
            "--references", metavar="IMG", nargs="+", type=Path, help="reference images of the character"
        )
        parser.add_argument(
            "--samples",
            type=sample_count,
            default=DEFAULT_SAMPLES,
            metavar="N",
            help=f"frames to sample, spread over the video ({MIN_SAMPLES}-{MAX_SAMPLES}, default {DEFAULT_SAMPLES})",
        )
        parser.add_argument("--json", dest="as_json", action="store_true", help="print one JSON object")

    def handle(
        self,
        *args,
        video: Path,
        character: str | None,
        references: list[Path] | None,
        samples: int,
        as_json: bool,
        **options,
    ):
        # FFmpeg's own messages about damaged streams are noise here: the command says it plainly.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        if not video.is_file():
            raise CommandError(f"No such file: {video}")
        try:
            open_capture(video).release()  # refuse a file that is no video before any image work
            if character is not None:
                found = self.find_character(character)
                names = [r.image.name for r in found.reference_images.all()]
                images = character_references(found)
                palette = dict(found.color_palette or {}) or None
                source = f"character {found.character_id}" + (" (its DNA palette)" if palette else "")
                subject = subject_of(found)
            else:
                # argparse requires --character or --references.
                names = [str(p) for p in references]  # type: ignore[union-attr]
                images = load_references(references)  # type: ignore[arg-type]
                palette = palette_from_references(images) or None
                source = "the images given (palette measured from them)"
                subject = SUBJECT_FACE
            result = score_video(video, images, palette=palette, samples=samples, subject=subject)
        except InvalidVideo as exc:
            raise CommandError(f"{video}: {exc}") from None
        except (NoReferenceFace, UnreadableReference) as exc:
            raise CommandError(str(exc)) from None
        if result.references_ignored:
            ignored = ", ".join(names[i] for i in result.references_ignored)
            self.stderr.write(f"Warning: no face found in {ignored}: left out of the comparison.")
        for pair in result.references_disagree:
            self.stderr.write(
                f"Warning: {names[pair['a']]} and {names[pair['b']]} look like different characters "
                f"(distance {pair['distance']:.2f}); the score compares with the nearer of them."
            )
        if as_json:
            self.stdout.write(self.to_json(result))
        else:
            self.print_table(video, source, len(images), result)

    @staticmethod
    def find_character(key: str) -> Character:
        character = character_queryset().filter(character_id=key).first()
        if character is None and key.isdigit():
            character = character_queryset().filter(pk=int(key)).first()
        if character is None:
            raise CommandError(f"No character with the id {key!r}.")
        return character

    @staticmethod
    def to_json(result: ConsistencyResult) -> str:
        return json.dumps(
            {
                "score": result.score,
                "frames": [
                    {
                        "seconds": f.seconds,
                        "score": f.score,
                        "identity": f.identity,
                        "appearance": f.appearance,
                        "face_found": f.face_found,
                        "distance": f.distance,
                    }
                    for f in result.frames
                ],
            }
        )

    def print_table(self, video: Path, source: str, images: int, result: ConsistencyResult) -> None:
        self.stdout.write(
            f"{video.name}: {len(result.frames)} frames against {source}, "
            f"{result.references_used} of {images} reference image(s) with a face"
        )
        header = f"{'seconds':>7}  {'face':4}  {'distance':>8}  {'identity':>8}  {'appearance':>10}  {'score':>5}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for f in result.frames:
            distance = "-" if f.distance is None else f"{f.distance:.3f}"
            appearance = "-" if f.appearance is None else f"{f.appearance:.2f}"
            self.stdout.write(
                f"{f.seconds:7.2f}  {'yes' if f.face_found else 'no':4}  {distance:>8}  {f.identity:8.2f}  "
                f"{appearance:>10}  {f.score:5d}"
            )
        self.stdout.write(f"\nConsistency score: {result.score}/100")
        self.stdout.write(f"Method: {result.method}")
