"""Settings for revenge_site, read from the environment only (django-environ).

Every variable is listed, with a comment, in `.env.example`. `ENV_FILE` names an env file to
read first (default `.env` in the project root); real environment variables win over it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# The sync directions, defined once (a pure module: importing it loads no Django app).
from kitsu_sync.merge import SyncDirection

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))


def parse_interval(value: str) -> timedelta:
    """Parse a human interval such as `90s`, `15m`, `24h` or `7d`."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", value or "")
    if not match:
        raise ImproperlyConfigured(
            f"Invalid interval {value!r}: use a number and a unit, for example 30m, 24h or 7d."
        )
    amount, unit = int(match[1]), match[2]
    if amount <= 0:
        raise ImproperlyConfigured(f"Invalid interval {value!r}: it must be greater than zero.")
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    return timedelta(**{units[unit]: amount})


def choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.str(name, default=default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value


DEBUG = env.bool("DEBUG", default=False)

# A development key only when DEBUG is on; production must set its own.
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: put a long random string in the environment."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS and browser protections ------------------------------------------------------------
# Secure by default whenever DEBUG is off (`manage.py check --deploy` passes with the defaults);
# each can be switched off from the environment, e.g. to try the image over plain HTTP.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# The container's health probe speaks plain HTTP to gunicorn, inside the container.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Behind a TLS-terminating proxy every request reaches gunicorn as plain HTTP. Trust the proxy's
# X-Forwarded-Proto only when it sets that header itself and is the only way in: a client that
# reaches gunicorn directly could otherwise claim HTTPS.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = env.bool("SECURE_CONTENT_TYPE_NOSNIFF", default=True)
X_FRAME_OPTIONS = choice("X_FRAME_OPTIONS", ("DENY", "SAMEORIGIN"), "DENY")

INSTALLED_APPS = [
    # Django's admin, signing in through allauth's page and its limits (revenge_site.accounts).
    "revenge_site.apps.RevengeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    # django-ninja: the API's interactive page serves its Swagger UI from these static files.
    "ninja",
    "django_htmx",
    "kitsu_sync",
    # allauth loads `<app>.provider` from installed apps: the Kitsu provider is its own app.
    "kitsu_sync.providers.kitsu",
    # django-csp: its system checks (settings in the 4.x format) and template tags.
    "csp",
]

# Error reports (mailed to ADMINS, shown with DEBUG) hide secrets in every frame's variables.
DEFAULT_EXCEPTION_REPORTER_FILTER = "revenge_site.reporting.SecretsFilter"

MIDDLEWARE = [
    # First: every log line of a request carries its id (revenge_site.middleware).
    "revenge_site.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "revenge_site.middleware.ContentSecurityPolicyMiddleware",
    "revenge_site.middleware.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "revenge_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "revenge_site.accounts.signup_state",
            ],
        },
    },
]

WSGI_APPLICATION = "revenge_site.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Keep a connection open for this many seconds (0 closes it after every request or task): a
# Celery worker then reuses one connection across syncs instead of starting a PostgreSQL backend
# for each. Django checks a reused connection before a request or task and replaces a dead one.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["CONN_MAX_AGE"] < 0:
    raise ImproperlyConfigured("DATABASE_CONN_MAX_AGE must be 0 or more seconds.")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")

LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="none")

# --- Accounts: who may sign up, and sign-in limits (docs/accounts.md) -------------------------
# Closed unless set: accounts come from an admin, or from invitation links (revenge_invite).
ACCOUNT_ALLOW_SIGNUP = env.bool("ACCOUNT_ALLOW_SIGNUP", default=False)
ACCOUNT_ADAPTER = "revenge_site.accounts.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "revenge_site.accounts.SocialAccountAdapter"
# allauth's limits (allauth/account/app_settings.py, RATE_LIMITS), written out: "N/period/per",
# per client address (ip), per account (key) or per signed-in user. They are counted in the
# cache, so they hold across gunicorn's workers only with the shared one (CACHE_BACKEND=redis).
# A refused attempt says "Too many failed login attempts"; a successful sign-in takes back
# its own attempt. "key" is the account (AccountAdapter), whether named by username or e-mail.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",  # sign-in form posts from one address
    "login_failed": "10/m/ip,5/5m/key",  # wrong passwords: per address, and per account
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",  # reset e-mails: per client, per e-mail address
    "reset_password_from_key": "20/m/ip",
    "reauthenticate": "10/m/user",
    "change_password": "5/m/user",
}
# Behind the reverse proxy every request comes from the proxy's address; with this many
# proxies of our own in front, allauth reads the client's address from X-Forwarded-For.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if ALLAUTH_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

# --- Redis and Celery -------------------------------------------------------------------------
# Without REDIS_URL the product runs embedded: Celery uses kombu's filesystem transport and the
# Kitsu rate limiter and locks live in this process.
REDIS_URL = env.str("REDIS_URL", default="")
VAR_DIR = env.path("VAR_DIR", default=BASE_DIR / "var")

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A message not acknowledged within this many seconds is delivered again. It must outlast
    # the longest task (50 min hard limit) and the longest retry delay (30 min, tasks.py).
    CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    if CELERY_VISIBILITY_TIMEOUT < 3600:
        raise ImproperlyConfigured(
            "CELERY_VISIBILITY_TIMEOUT must be at least 3600 seconds: a sync may run for 50 "
            "minutes, and a shorter timeout would deliver it to a second worker meanwhile."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT
    }
else:
    _queue_dir = Path(VAR_DIR) / "celery-queue"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(Path(VAR_DIR) / "celery-processed"),
        "store_processed": False,
        # Where kombu keeps its exchange tables (by default a `control` folder in the
        # current directory, wherever the process was started).
        "control_folder": str(Path(VAR_DIR) / "celery-control"),
    }
# The cache: a show's ids as its media server gave them, and which users' deliveries are
# queued already. Redis (shared by every process) when there is one, else this process's memory;
# CACHE_BACKEND=locmem keeps it per process anyway (the test suite does).
CACHE_BACKEND = choice("CACHE_BACKEND", ("redis", "locmem"), "redis" if REDIS_URL else "locmem")
if CACHE_BACKEND == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("CACHE_BACKEND=redis needs REDIS_URL.")
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "revenge",
        }
        if CACHE_BACKEND == "redis"
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(Path(VAR_DIR) / "celerybeat-schedule")

# --- Kitsu ------------------------------------------------------------------------------------
# kitsu.io moved to kitsu.app in August 2024: the hosts are settings, never literals in code.
KITSU_API_URL = env.str("KITSU_API_URL", default="https://kitsu.app/api/edge").rstrip("/")
KITSU_OAUTH_URL = env.str("KITSU_OAUTH_URL", default="https://kitsu.app/api/oauth").rstrip("/")
KITSU_CLIENT_ID = env.str("KITSU_CLIENT_ID", default="")
KITSU_CLIENT_SECRET = env.str("KITSU_CLIENT_SECRET", default="")
KITSU_AUTH_FLOW = choice("KITSU_AUTH_FLOW", ("password", "authorization_code"), "password")
# PKCE (RFC 7636) in the authorization-code flow: a server without PKCE ignores it.
KITSU_OAUTH_PKCE = env.bool("KITSU_OAUTH_PKCE", default=True)
KITSU_TOKEN_KEY = env.str("KITSU_TOKEN_KEY", default="")
KITSU_RATE_LIMIT = env.float("KITSU_RATE_LIMIT", default=10.0)
if KITSU_RATE_LIMIT <= 0:
    raise ImproperlyConfigured("KITSU_RATE_LIMIT must be a positive number of requests per second.")
# The Redis key of the shared limiter: Revenge instances sharing one Redis and one Kitsu
# client budget use the same key; separate budgets use different keys.
KITSU_RATE_LIMIT_KEY = env.str("KITSU_RATE_LIMIT_KEY", default="kitsu-api")
if not KITSU_RATE_LIMIT_KEY.strip():
    raise ImproperlyConfigured("KITSU_RATE_LIMIT_KEY must not be empty.")
KITSU_TIMEOUT = env.float("KITSU_TIMEOUT", default=30.0)
# One attempt's whole answer (connect, headers, body) and the most bytes of one answer's body:
# KITSU_TIMEOUT bounds each read only, so a slow drip or a huge body needs these.
KITSU_HTTP_DEADLINE = env.float("KITSU_HTTP_DEADLINE", default=60.0)
if KITSU_HTTP_DEADLINE <= 0:
    raise ImproperlyConfigured("KITSU_HTTP_DEADLINE must be a positive number of seconds.")
KITSU_MAX_RESPONSE_BYTES = env.int("KITSU_MAX_RESPONSE_BYTES", default=32 * 1024 * 1024)
if KITSU_MAX_RESPONSE_BYTES < 1024 * 1024:
    raise ImproperlyConfigured(
        "KITSU_MAX_RESPONSE_BYTES must be at least 1048576 (1 MiB): "
        "a full library page is about 4 MB."
    )
# Library pages a sync fetches ahead while it writes the current one (1: one at a time).
KITSU_PAGES_IN_FLIGHT = env.int("KITSU_PAGES_IN_FLIGHT", default=2)
if not 1 <= KITSU_PAGES_IN_FLIGHT <= 8:
    raise ImproperlyConfigured("KITSU_PAGES_IN_FLIGHT must be between 1 and 8.")
KITSU_SYNC_ENABLED = env.bool("KITSU_SYNC_ENABLED", default=True)
KITSU_SYNC_INTERVAL = parse_interval(env.str("KITSU_SYNC_INTERVAL", default="24h"))
KITSU_SYNC_DIRECTION = choice("KITSU_SYNC_DIRECTION", tuple(SyncDirection), "import_only")
# Scrobbling: playback stopped at this percent (or more) counts as watched; the same episode
# reported again within the window (a stop and a mark-played, two servers) counts once.
KITSU_SCROBBLE_THRESHOLD = env.float("KITSU_SCROBBLE_THRESHOLD", default=85.0)
if not 1 <= KITSU_SCROBBLE_THRESHOLD <= 100:
    raise ImproperlyConfigured("KITSU_SCROBBLE_THRESHOLD must be a percentage from 1 to 100.")
KITSU_SCROBBLE_REPEAT_WINDOW = parse_interval(env.str("KITSU_SCROBBLE_REPEAT_WINDOW", default="6h"))

# --- Linking ----------------------------------------------------------------------------------


def kitsu_socialaccount_providers(
    *, client_id: str, client_secret: str, flow: str, pkce: bool = True
) -> dict:
    """allauth's app for the `kitsu` provider, from settings (no SocialApp rows needed).

    With the password flow the provider stays installed but hidden from the sign-in page:
    kitsu.app refuses the authorization-code flow it would start. `pkce` sends a PKCE
    challenge with the authorize request and its verifier with the token request.
    """
    return {
        "kitsu": {
            "APPS": [
                {
                    "client_id": client_id,
                    "secret": client_secret,
                    "settings": {"hidden": flow != "authorization_code"},
                }
            ],
            "SCOPE": ["public"],
            "OAUTH_PKCE_ENABLED": pkce,
        }
    }


SOCIALACCOUNT_PROVIDERS = kitsu_socialaccount_providers(
    client_id=KITSU_CLIENT_ID,
    client_secret=KITSU_CLIENT_SECRET,
    flow=KITSU_AUTH_FLOW,
    pkce=KITSU_OAUTH_PKCE,
)
# Kitsu tokens live only in KitsuToken, encrypted; allauth's SocialToken table stays empty.
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_AUTO_SIGNUP = True

# plain: one line of text; json: one JSON object per line (time, level, logger, message and
# request_id, user_id, sync_run_id where known). Both mask secrets (revenge_site.logs).
LOG_FORMAT = choice("LOG_FORMAT", ("plain", "json"), "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "revenge_site.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "revenge_site.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # urllib3 logs full URLs at DEBUG; keep it quiet so that query strings never reach logs.
    # urllib3 logs every connection, Apprise every plugin it loads, at DEBUG: noise, even when
    # LOG_LEVEL=DEBUG is asked for to see this project's own steps.
    "loggers": {"urllib3": {"level": "WARNING"}, "apprise": {"level": "WARNING"}},
}
# Celery's worker logs through LOGGING too (its own handler would skip the format and masking).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Content-Security-Policy and Permissions-Policy ---------------------------------------
# django-csp sends the policy (revenge_site.middleware adds the Kitsu API's origin to img-src,
# since the sandbox serves its own posters, and the Kitsu OAuth origin to form-action, where
# "Link Kitsu" redirects). Every script and style is a file of this site: no inline code.
# CSP_IMG_SRC: where else poster images come from (Kitsu's media host by default).
_csp_img_src = env.list("CSP_IMG_SRC", default=["https://media.kitsu.app"])
for _source in _csp_img_src:
    if not re.fullmatch(r"https?://[^\s;,'\"]+", _source):
        raise ImproperlyConfigured(
            f"CSP_IMG_SRC: {_source!r} is not an origin such as https://media.kitsu.app."
        )
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", *_csp_img_src],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        # The same rule as X-Frame-Options, for browsers that read only this one.
        "frame-ancestors": ["'none'" if X_FRAME_OPTIONS == "DENY" else "'self'"],
    }
}
# Browser features the site never uses, denied to it and to anything it could embed.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}

# --- Sync -------------------------------------------------------------------------------------
# A full pass (which also notices entries deleted on Kitsu) replaces the incremental run this
# often; beat looks for users whose sync is due every KITSU_SYNC_DISPATCH_EVERY and queues at
# most KITSU_SYNC_DISPATCH_LIMIT of them per look.
KITSU_SYNC_FULL_INTERVAL = parse_interval(env.str("KITSU_SYNC_FULL_INTERVAL", default="7d"))
KITSU_SYNC_DISPATCH_EVERY = parse_interval(env.str("KITSU_SYNC_DISPATCH_EVERY", default="5m"))
KITSU_SYNC_DISPATCH_LIMIT = env.int("KITSU_SYNC_DISPATCH_LIMIT", default=500)
# The queue tasks are sent to (workers consume it with -Q); "celery" is Celery's own default.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# With acks_late, a worker should hold no more tasks than it runs.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# --- Which Kitsu anime a media server's show is ---------------------------------------------
# The community datasets are downloaded here (no licence lets Revenge ship a copy): from these
# URLs, when never loaded or MAPPING_UPDATE_EVERY old, retried after MAPPING_RETRY_AFTER.
MAPPING_ANIME_LISTS_URL = env.str(
    "MAPPING_ANIME_LISTS_URL",
    default="https://raw.githubusercontent.com/Anime-Lists/anime-lists/master/anime-list-master.xml",
)
MAPPING_FRIBB_URL = env.str(
    "MAPPING_FRIBB_URL",
    default="https://raw.githubusercontent.com/Fribb/anime-lists/master/anime-list-full.json",
)
MAPPING_UPDATE_EVERY = parse_interval(env.str("MAPPING_UPDATE_EVERY", default="7d"))
MAPPING_RETRY_AFTER = parse_interval(env.str("MAPPING_RETRY_AFTER", default="6h"))
# Kitsu's own /mappings answers are kept this long (answers "none" for a shorter time).
KITSU_MAPPING_CACHE_TTL = parse_interval(env.str("KITSU_MAPPING_CACHE_TTL", default="7d"))
KITSU_MAPPING_MISS_TTL = parse_interval(env.str("KITSU_MAPPING_MISS_TTL", default="1d"))
# Kitsu's catalogue on the web pages is kept this long: an anime's details and a season's list,
# then a title search and trending (which change faster).
KITSU_METADATA_TTL = parse_interval(env.str("KITSU_METADATA_TTL", default="24h"))
KITSU_SEARCH_TTL = parse_interval(env.str("KITSU_SEARCH_TTL", default="1h"))

CELERY_BEAT_SCHEDULE = {
    "kitsu-dispatch-due-syncs": {
        "task": "kitsu_sync.tasks.dispatch_due_syncs",
        "schedule": KITSU_SYNC_DISPATCH_EVERY,
    },
    # Changes for Kitsu whose own delivery request was lost (the broker was down).
    "kitsu-drain-outbox": {
        "task": "kitsu_sync.tasks.drain_outbox",
        "schedule": timedelta(minutes=1),
    },
    # Looks every hour; downloads only the datasets that are due (weekly by default).
    "kitsu-update-mapping-datasets": {
        "task": "kitsu_sync.tasks.update_mapping_datasets",
        "schedule": timedelta(hours=1),
    },
    # Scrobbles left unmatched because Kitsu or the media server did not answer, asked again.
    "kitsu-retry-unmatched": {
        "task": "kitsu_sync.tasks.retry_unmatched",
        "schedule": timedelta(minutes=5),
    },
    # Watch reports older than the repeat window, idempotent answers older than a day.
    "kitsu-prune-scrobble-records": {
        "task": "kitsu_sync.tasks.prune_scrobble_records",
        "schedule": timedelta(hours=1),
    },
}

# --- Metrics (docs/operations.md) ---------------------------------------------------------------
# GET /metrics in Prometheus' text format: off unless enabled, and then only for a bearer token
# (METRICS_TOKEN), an allowed address (METRICS_ALLOWED_IPS: addresses or networks), or both.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=False)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")


def ip_networks(name: str) -> list[str]:
    """A list of addresses or networks (192.168.1.0/24), each checked now."""
    import ipaddress

    entries = env.list(name, default=[])
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {entry!r} is not an IP address or network (such as 10.0.0.0/8)."
            ) from None
    return entries


METRICS_ALLOWED_IPS = ip_networks("METRICS_ALLOWED_IPS")
if METRICS_ENABLED and not (METRICS_TOKEN or METRICS_ALLOWED_IPS):
    raise ImproperlyConfigured(
        "METRICS_ENABLED=true needs METRICS_TOKEN or METRICS_ALLOWED_IPS (or both): an open "
        "/metrics would show anyone how many people use this server and when."
    )
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured(
        "METRICS_TOKEN is too short: use at least 24 random characters "
        '(python -c "import secrets; print(secrets.token_urlsafe(32))").'
    )
# The folder that gunicorn's and Celery's processes share for their counters (prometheus_client's
# multiprocess mode; read from the environment by prometheus_client itself, before any import).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if not PROMETHEUS_MULTIPROC_DIR:
    # prometheus_client switches to multiprocess mode when the variable merely exists, and an
    # empty one would put its files in the current folder: empty means off.
    env.ENVIRON.pop("PROMETHEUS_MULTIPROC_DIR", None)
elif not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR} is not a folder: create it (one "
        "folder shared by the web, worker and beat processes), or leave the variable empty."
    )
# Prometheus may scrape gunicorn directly over plain HTTP, as the health probe does.
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]

# --- Notifications (docs/operations.md) ---------------------------------------------------------
# Apprise URL for users who set none of their own (an admin channel, say); empty: none.
APPRISE_DEFAULT_URL = env.str("APPRISE_DEFAULT_URL", default="")
# Users' own Apprise URLs may name hosts on loopback, private or link-local networks (a Gotify
# or ntfy at home) only when this is true: otherwise any user could make the server post to
# services on its own network.
APPRISE_ALLOW_LOCAL_TARGETS = env.bool("APPRISE_ALLOW_LOCAL_TARGETS", default=False)
# Tell the user once their syncs have failed this many times in a row (a failed sync is retried
# by Celery up to 5 times, so 6 is one sync request and all its retries).
KITSU_NOTIFY_FAILED_SYNCS = env.int("KITSU_NOTIFY_FAILED_SYNCS", default=6)
if KITSU_NOTIFY_FAILED_SYNCS < 1:
    raise ImproperlyConfigured("KITSU_NOTIFY_FAILED_SYNCS must be 1 or more.")
# Tell the user once a scrobbled show has waited this long for a match.
KITSU_NOTIFY_UNMATCHED_AFTER = parse_interval(
    env.str("KITSU_NOTIFY_UNMATCHED_AFTER", default="24h")
)
CELERY_BEAT_SCHEDULE["kitsu-notify-conditions"] = {
    "task": "kitsu_sync.tasks.notify_conditions",
    "schedule": timedelta(minutes=15),
}
