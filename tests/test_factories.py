"""tests/support/factories.py has a factory for every model of the project's apps, and each one saves."""

import pytest
from django.apps import apps

from tests.support import factories

pytestmark = pytest.mark.django_db

OUR_APPS = ("characters", "voting", "generation", "marketplace")
# Singletons and rows the services make as a side effect, never built on their own in a test.
NO_FACTORY_NEEDED = {"PinningSettings"}


def _factories():
    return {
        f.__name__: f
        for f in vars(factories).values()
        if isinstance(f, type) and issubclass(f, factories.factory.django.DjangoModelFactory) and f._meta.model
    }


def test_every_model_has_a_factory_that_saves_a_row():
    by_model = {}
    for factory_class in _factories().values():
        model = factory_class._meta.get_model_class()
        by_model.setdefault(model, factory_class)
    for label in OUR_APPS:
        for model in apps.get_app_config(label).get_models():
            if model.__name__ in NO_FACTORY_NEEDED:
                continue
            assert model in by_model, f"tests/support/factories.py has no factory for {model.__name__}"
            row = by_model[model]()
            assert model.objects.filter(pk=row.pk).exists()
    assert factories.UserFactory().check_password("pass-word-123")  # accounts
