import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()

# With no broker: resume interrupted work and run the beat in this process (`runserver` loads this module too).
from config import background  # noqa: E402

background.start()
