from django.apps import AppConfig
from django.core import checks


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Video generation"

    def ready(self) -> None:
        checks.register(check_generation_models, checks.Tags.compatibility)


def check_generation_models(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every model chosen for a mode (GENERATION_MODEL_FOR_MODE) must have a price, a payload builder and a schema:
    an unknown model id is refused when the site starts (manage.py check, migrate, runserver), not at the first job."""
    from django.conf import settings

    from .payloads import model_problem

    errors: list[checks.CheckMessage] = []
    for mode, model_id in settings.GENERATION_MODEL_FOR_MODE.items():
        problem = model_problem(mode, model_id)
        if problem:
            errors.append(
                checks.Error(
                    problem,
                    hint="Set GENERATION_REF_MODEL_ID / GENERATION_I2V_MODEL_ID / "
                    "GENERATION_T2V_MODEL_ID to a model listed in GENERATION_MODELS.",
                    id="generation.E001",
                )
            )
    return errors
