from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge_site.settings")

application = get_wsgi_application()

if not settings.DEBUG:
    # gunicorn serves the static files collected into the image (runserver does with DEBUG on).
    # WhiteNoise wraps the WSGI app rather than sitting in MIDDLEWARE so that only the served
    # application needs it.
    from whitenoise import WhiteNoise

    application = WhiteNoise(
        application, root=str(settings.STATIC_ROOT), prefix=settings.STATIC_URL
    )
