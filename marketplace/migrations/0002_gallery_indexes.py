"""Partial indexes for the gallery's three sorts, over the characters it lists (canonical and licensable).

The characters table belongs to the characters app, and these indexes exist for the marketplace's
query, so they are created here in plain SQL that PostgreSQL and SQLite both accept. The WHERE
clause repeats marketplace.selectors.gallery_filter(), which is what lets the planner use them.
"""
from django.db import migrations

GALLERY_WHERE = "status = 'canonical' AND allow_licensing"
SORT_KEYS = {
    "character_gallery_popular": "total_votes DESC, id DESC",
    "character_gallery_recent": "created_at DESC, id DESC",
    "character_gallery_used": "clips_used DESC, id DESC",
}


class Migration(migrations.Migration):
    dependencies = [
        ("characters", "0002_character_referenceimage_and_more"),
        ("marketplace", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX {name} ON characters_character ({keys}) WHERE {GALLERY_WHERE}",
            reverse_sql=f"DROP INDEX {name}",
        )
        for name, keys in SORT_KEYS.items()
    ]
