from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data (`load_demo_data`) and the clips it renders. It may import every app; none imports it."""

    name = "demo"
    verbose_name = "Demo data"
