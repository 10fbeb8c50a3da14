# One image for web (gunicorn), worker and beat; it runs as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

# .dockerignore keeps .env (secrets) and local state out of the image.
COPY . .
# Static files are collected at build time; gunicorn serves them through WhiteNoise. The key is
# a throwaway: settings refuse to load without one, and collectstatic signs nothing.
RUN SECRET_KEY=collectstatic-only ENV_FILE=/dev/null python manage.py collectstatic --no-input \
    && useradd --create-home --uid 10001 revenge \
    && mkdir -p /app/var \
    && chown -R revenge:revenge /app/var
USER revenge

EXPOSE 8000
CMD ["gunicorn", "revenge_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
