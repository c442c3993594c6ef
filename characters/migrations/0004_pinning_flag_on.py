"""Character pinning is the product's core feature: a fresh install has its flag switched on."""
from django.db import migrations


def switch_pinning_on(apps, schema_editor):
    PinningSettings = apps.get_model("characters", "PinningSettings")
    PinningSettings.objects.get_or_create(
        pk=1,
        defaults={"enabled": True, "max_elements_per_season": 4, "auto_switch_model": True,
                  "cost_premium_warning": True},
    )


class Migration(migrations.Migration):

    dependencies = [
        ("characters", "0003_pinned_characters"),
    ]

    operations = [
        migrations.RunPython(switch_pinning_on, migrations.RunPython.noop),
    ]
