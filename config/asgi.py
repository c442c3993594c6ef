import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()

# With no broker: resume interrupted work and run the beat in this process.
from config import background  # noqa: E402

background.start()
