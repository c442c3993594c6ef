"""Settings shared by every environment. Everything that differs between machines comes from
the environment (see the README's table); each external service has one switch:

- DATABASE_URL  -> PostgreSQL (else a SQLite file)
- REDIS_URL     -> Celery broker/result backend and the cache (else tasks in background threads of the
                   server process, local memory)
- S3_BUCKET     -> django-storages S3 backend (else the local media/ folder)
"""

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE, NONE, SELF
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# How many reverse proxies of ours stand in front of the app, each appending to X-Forwarded-For. The client's
# address is read from that header only through them (common.client_ip); 0 = the header is ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "common",
    "characters",
    "voting",
    "generation",
    "marketplace",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    "common.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Under /api/ a CSRF refusal answers the API's JSON error, elsewhere Django's page.
CSRF_FAILURE_VIEW = "common.views.csrf_failure"
# A database that cannot be reached answers 503 with this Retry-After (common.middleware).
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 10

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Django turns psycopg's prepared statements off (None). Its own cursors bind client-side and never
    # prepare either way; this lets the one statement that asks for it (the vote) be planned once per
    # connection instead of on every request.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
    # A database host that does not answer fails a request in seconds (then 503), not at the OS's TCP timeout.
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Background tasks write while pages read (the embedded default): wait for a lock instead of failing with
    # "database is locked", take the write lock when a transaction starts (a read lock cannot always be
    # upgraded while another connection writes, and that fails at once whatever the timeout), and WAL, so
    # readers never wait for a writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
# Where this site is reached from outside: absolute links in dna.json and API bodies.
SITE_URL: str = env("SITE_URL", default="http://127.0.0.1:8000")
MEDIA_ROOT = Path(env("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media")))

S3_BUCKET = env("S3_BUCKET", default="")
if S3_BUCKET:
    AWS_STORAGE_BUCKET_NAME = S3_BUCKET
    AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default="us-east-1")
    AWS_ACCESS_KEY_ID = env("AWS_ACCESS_KEY_ID", default=None)
    AWS_SECRET_ACCESS_KEY = env("AWS_SECRET_ACCESS_KEY", default=None)
    AWS_QUERYSTRING_AUTH = True  # presigned URLs: private bucket, and they honour Range
    AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=3600)
    AWS_S3_SIGNATURE_VERSION = "s3v4"  # boto3 would presign with the deprecated V2 in us-east-1
    AWS_S3_FILE_OVERWRITE = False
    AWS_DEFAULT_ACL = None
    DEFAULT_FILE_STORAGE_BACKEND = "storages.backends.s3.S3Storage"
else:
    DEFAULT_FILE_STORAGE_BACKEND = "django.core.files.storage.FileSystemStorage"
# Where pages load clip videos and images from besides this site: the bucket's presigned URLs.
if S3_BUCKET and AWS_S3_ENDPOINT_URL:
    _endpoint = urlsplit(AWS_S3_ENDPOINT_URL)
    MEDIA_ORIGINS = [f"{_endpoint.scheme}://{_endpoint.netloc}"]
elif S3_BUCKET:
    MEDIA_ORIGINS = [
        f"https://{S3_BUCKET}.s3.amazonaws.com",
        f"https://{S3_BUCKET}.s3.{AWS_S3_REGION_NAME}.amazonaws.com",
    ]
else:
    MEDIA_ORIGINS = []

STORAGES = {
    "default": {"BACKEND": DEFAULT_FILE_STORAGE_BACKEND},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Cache, Celery --------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
# With no broker, long work (extraction, DNA lock, generation) runs in a small thread pool of the server
# process, through the same task functions and `.delay()` calls (config/background.py): the request returns
# at once and the page shows progress. Off, tasks run inside the request that queues them (eager).
TASKS_IN_BACKGROUND_THREADS = not REDIS_URL and env.bool("TASKS_IN_BACKGROUND_THREADS", default=True)
TASKS_BACKGROUND_THREADS = env.int("TASKS_BACKGROUND_THREADS", default=2)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "common.cache.ReusedClientRedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # No broker configured: tasks run in-process, through the very same task functions.
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_ALWAYS_EAGER = not TASKS_IN_BACKGROUND_THREADS
    CELERY_TASK_EAGER_PROPAGATES = True

CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("extraction"), Queue("generation"))
CELERY_TASK_ROUTES = {
    # The sweep is quick and must not wait behind long extractions.
    "characters.tasks.resume_stale_clips": {"queue": "default"},
    "characters.tasks.resume_stale_marks": {"queue": "default"},
    "characters.tasks.*": {"queue": "extraction"},
    "voting.tasks.lock_winning_submission": {"queue": "extraction"},  # image work, like extraction
    "generation.tasks.*": {"queue": "generation"},
}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=15 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=14 * 60)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis hands an unacknowledged message (acks late: a task whose worker died) out again after this long. Just
# over the longest a task may run: sooner would run a live task twice, the default (an hour) leaves a clip
# stuck for an hour. (Countdowns longer than this would be delivered twice; ours are at most 30 s.)
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
CELERY_BEAT_SCHEDULE: dict = {}

# --- Work that gets stuck (characters.clips.selectors.stale_clips, generation.selectors.stale_jobs) ---------
# Work shows it is alive: a running extraction beats (progress, and a beat every few seconds while it works),
# a generation job is moved by its polls. No sign of life for this long and it is taken for lost.
TASKS_HEARTBEAT_TIMEOUT_SECONDS = env.int("TASKS_HEARTBEAT_TIMEOUT_SECONDS", default=120)
# A queued clip whose message is no longer in the broker (a FLUSHALL, a lost Redis) is re-queued after this
# grace; where the broker cannot be asked, a clip queued this long is taken for lost.
TASKS_QUEUED_GRACE_SECONDS = env.int("TASKS_QUEUED_GRACE_SECONDS", default=60)
TASKS_QUEUED_TIMEOUT_SECONDS = env.int("TASKS_QUEUED_TIMEOUT_SECONDS", default=30 * 60)
# How many times lost work is queued again before it fails with the reason.
TASKS_MAX_ATTEMPTS = env.int("TASKS_MAX_ATTEMPTS", default=3)
TASKS_SWEEP_SECONDS = env.float("TASKS_SWEEP_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE["characters-resume-stale-clips"] = {
    "task": "characters.tasks.resume_stale_clips",
    "schedule": TASKS_SWEEP_SECONDS,
}
CELERY_BEAT_SCHEDULE["characters-resume-stale-marks"] = {
    "task": "characters.tasks.resume_stale_marks",
    "schedule": TASKS_SWEEP_SECONDS,
}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # JSON with a nesting and size limit (a 4xx, not a RecursionError); forms and uploads as DRF parses them.
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "common.throttling.AnonRateThrottle",
        "common.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="600/min"),
        # Re-running a clip's extraction (clip uploads are limited in the service: CLIP_UPLOAD_RATE).
        "extractions": env("API_THROTTLE_EXTRACTIONS", default="30/hour"),
        "auth": env("API_THROTTLE_AUTH", default="20/min"),
        # Provider webhooks, per source address (they carry no user).
        "webhooks": env("API_THROTTLE_WEBHOOKS", default="120/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "common.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "common.exceptions.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": None,
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Character Persistence System API",
    "DESCRIPTION": "Clips, candidate frames, voting, Character DNA, pinning, generation and licensing.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from our own static files (nothing is fetched from a CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status` field with its own choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "ClipStatusEnum": "characters.models.Clip.Status",
        "RenderStyleEnum": "characters.models.RENDER_STYLE_CHOICES",
        "SubmissionStatusEnum": "voting.models.CharacterSubmission.Status",
        "VotingSessionStatusEnum": "voting.models.VotingSession.Status",
    },
}

# --- Accounts: sign-up, log-in, email verification (django-allauth), lock-outs (django-axes) --
INSTALLED_APPS += ["allauth", "allauth.account", "axes"]
# Both after AuthenticationMiddleware; axes' turns a flagged (locked-out) log-in into its page, so it comes last.
MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware", "axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "common.login_limits.LoginLimitBackend",  # refuses locked-out accounts/addresses before any password check
    "django.contrib.auth.backends.ModelBackend",  # the admin, the API token (username + password)
    "allauth.account.auth_backends.AuthenticationBackend",  # the site's log-in page (username or email)
]
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# mandatory: no log-in before the address is verified by the emailed link; optional | none.
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Character Persistence] "
ACCOUNT_LOGOUT_REDIRECT_URL = LOGOUT_REDIRECT_URL
# allauth's own limits stay on (sign-up, log-in, password reset, confirmation mails, all in the cache). Its
# failed-log-in limit is set above axes' so the lock-out below, with its clear message, is what people meet.
ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,10/5m/key"}

# Email: SMTP when EMAIL_HOST is set, else printed on the console (the embedded default).
EMAIL_HOST = env("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Character Persistence <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# How many reverse proxies in front of us append to X-Forwarded-For. 0: the client is REMOTE_ADDR and the
# header is ignored (a client can write anything in it).
if "TRUSTED_PROXY_COUNT" not in globals():
    TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# Lock-out after LOGIN_FAILURE_LIMIT wrong passwords, per account (from any address) and per address (for any
# account), on every entry point: the site's log-in, the admin's and the API token. Admins unlock in the admin
# (Axes -> Access attempts: delete the rows) or it lifts by itself after LOGIN_LOCKOUT_MINUTES.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "common.login_limits.client_address"
AXES_USERNAME_CALLABLE = "common.login_limits.attempted_account"
AXES_LOCKOUT_CALLABLE = "common.login_limits.lockout_response"
AXES_VERBOSE = False  # no start-up banner on every manage.py command; lock-outs are still logged

# --- Credits for newcomers ------------------------------------------------------------------
# Granted through the ledger when an account signs up (0: none; admins grant on request instead).
CREDITS_SIGNUP_GRANT = env.int("CREDITS_SIGNUP_GRANT", default=0)
# A contributor may file this many credit requests a day, one open at a time.
CREDIT_REQUESTS_PER_DAY = env.int("CREDIT_REQUESTS_PER_DAY", default=3)

# --- Uploads and the extraction pipeline ----------------------------------------------------
# Clips one user may upload per window (DRF's spelling: N/second|minute|hour|day), from any page, the API or
# a command: characters.clips.services counts them (empty = no limit).
CLIP_UPLOAD_RATE = env("CLIP_UPLOAD_RATE", default="30/hour")
CLIP_MAX_BYTES = env.int("CLIP_MAX_BYTES", default=200 * 1024 * 1024)
CLIP_MAX_SECONDS = env.float("CLIP_MAX_SECONDS", default=60.0)
CLIP_MAX_WIDTH = env.int("CLIP_MAX_WIDTH", default=3840)
CLIP_MAX_HEIGHT = env.int("CLIP_MAX_HEIGHT", default=2160)
CLIP_FETCH_TIMEOUT_SECONDS = env.float("CLIP_FETCH_TIMEOUT_SECONDS", default=20.0)
# The ffmpeg that probes uploads and makes their H.264 copies; empty: the one imageio-ffmpeg ships.
FFMPEG_BINARY = env.str("FFMPEG_BINARY", default="")
# Networks a server-side fetch may reach besides public addresses (tests allow 127.0.0.0/8). Keep empty in production.
SAFE_FETCH_ALLOWED_NETWORKS = env.list("SAFE_FETCH_ALLOWED_NETWORKS", default=[])
# Let Django spool large uploads to disk instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

EXTRACTION_FPS = env.float("EXTRACTION_FPS", default=1.0)
EXTRACTION_TOP_N = env.int("EXTRACTION_TOP_N", default=10)
# Frames scoring under this (0-100) are not offered, unless a clip has none above it (characters.clips.extraction).
MIN_QUALITY_SCORE = env.int("MIN_QUALITY_SCORE", default=70)
EXTRACTION_DOMINANT_QUALITY = env.int("EXTRACTION_DOMINANT_QUALITY", default=90)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}

# --- Content-Security-Policy (django-csp) ----------------------------------------------------
# Scripts and styles only from our static files: no inline script, style attribute or on* handler anywhere
# (a script that must be inline carries the request's nonce: {{ request.csp_nonce }}). Images: ours, the
# bucket's and data: (the favicon, canvas snapshots); fetch() only to this site.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", "blob:", *MEDIA_ORIGINS],
        "media-src": [SELF, "blob:", *MEDIA_ORIGINS],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Celery result expiry is short: the database is the source of truth for every status.
CELERY_RESULT_EXPIRES = timedelta(hours=1)

# --- Voting ---------------------------------------------------------------------------------
VOTING_MIN_SUBMISSIONS = env.int("VOTING_MIN_SUBMISSIONS", default=2)
VOTING_DURATION_HOURS = env.int("VOTING_DURATION_HOURS", default=24)  # 24-72
VOTING_RUNOFF_DURATION_HOURS = env.int("VOTING_RUNOFF_DURATION_HOURS", default=24)
VOTING_QUORUM = env.int("VOTING_QUORUM", default=10)
# first_to_final_count | most_recent_vote (the seed's "most recent votes wins") | runoff | admin
VOTING_TIE_RULE = env("VOTING_TIE_RULE", default="runoff")
VOTING_AUTO_START = env.bool("VOTING_AUTO_START", default=True)
VOTING_MIN_ACCOUNT_AGE_HOURS = env.int("VOTING_MIN_ACCOUNT_AGE_HOURS", default=0)
VOTING_MAX_FRAMES = 10
CELERY_BEAT_SCHEDULE["voting-close-expired"] = {
    "task": "voting.tasks.close_expired_sessions",
    "schedule": 60.0,
}

# --- Generation -----------------------------------------------------------------------------
# Every model we can call, by the id its provider gives it: the `provider` that runs it (generation/providers/),
# the mode it serves, the seconds it makes, the aspect ratios it takes, how many reference images one request
# carries (`references`), and its price (USD per second of video; `usd_per_second_audio` when the contributor asks
# for sound, None when the model makes no sound). Each has an input/output JSON Schema in
# generation/provider_schemas/<provider>/ and a payload builder in generation/payloads.py; the cost of a job is what
# its provider bills for it. Prices are the providers' list prices, with the source beside each; `price_note` says
# why a price is not confirmed from the provider's own page (the quote, the create page and the API show it).
_RATIOS = ["16:9", "9:16", "1:1"]
GENERATION_MODELS: dict[str, dict[str, Any]] = {
    # fal: prices from each model's page on fal (fal.ai/models/<id>/llms.txt), checked 2026-12-03.
    "fal-ai/kling-video/o1/reference-to-video": {
        "provider": "fal",
        "mode": "reference-to-video",
        "label": "Kling O1 reference-to-video",
        "durations": list(range(3, 11)),
        "aspect_ratios": _RATIOS,
        "references": 7,
        "usd_per_second": "0.112",
        "usd_per_second_audio": None,
    },
    # UNCONFIRMED: a third-party summary of fal's catalogue; fal's own pages show no price for O3 Pro
    # reference-to-video (its API reference, searched again 2026-12-04). fal publishes O3 4K reference-to-video at
    # $0.42/s and O3 Standard image-to-video at $0.084/$0.112 (audio off/on), neither of which is this model.
    "fal-ai/kling-video/o3/pro/reference-to-video": {
        "provider": "fal",
        "mode": "reference-to-video",
        "label": "Kling O3 Pro reference-to-video",
        "durations": list(range(3, 16)),
        "aspect_ratios": _RATIOS,
        "references": 7,
        "usd_per_second": "0.14",
        "usd_per_second_audio": "0.14",
        "price_note": "fal publishes no price for this model; $0.14/s is a third-party summary's figure",
    },
    "fal-ai/kling-video/v2.6/pro/image-to-video": {
        "provider": "fal",
        "mode": "image-to-video",
        "label": "Kling v2.6 Pro image-to-video",
        "durations": [5, 10],
        "aspect_ratios": _RATIOS,
        "references": 1,
        "usd_per_second": "0.07",
        "usd_per_second_audio": "0.14",
    },
    "fal-ai/kling-video/v2.1/pro/image-to-video": {
        "provider": "fal",
        "mode": "image-to-video",
        "label": "Kling v2.1 Pro image-to-video",
        "durations": [5, 10],
        "aspect_ratios": _RATIOS,
        "references": 1,
        "usd_per_second": "0.098",
        "usd_per_second_audio": None,
    },
    # UNCONFIRMED: fal's own pages still disagree (searched again 2026-12-04): its llms.txt says $0.224/$0.336 per
    # second (audio off/on), its playground page $0.112/$0.168. The higher figures, so a quote never undercharges.
    "fal-ai/kling-video/v3/pro/image-to-video": {
        "provider": "fal",
        "mode": "image-to-video",
        "label": "Kling v3 Pro image-to-video",
        "durations": list(range(3, 16)),
        "aspect_ratios": _RATIOS,
        "references": 1,
        "usd_per_second": "0.224",
        "usd_per_second_audio": "0.336",
        "price_note": "fal's own pages give two prices for this model; this is the higher one",
    },
    "fal-ai/kling-video/v2.6/pro/text-to-video": {
        "provider": "fal",
        "mode": "text-to-video",
        "label": "Kling v2.6 Pro text-to-video",
        "durations": [5, 10],
        "aspect_ratios": _RATIOS,
        "references": 0,
        "usd_per_second": "0.07",
        "usd_per_second_audio": "0.14",
    },
    # Replicate bills this model per second of output video, by mode (we send standard, 720p). UNCONFIRMED: no
    # published copy of Replicate's price for kwaivgi/kling-v2.1 was found (searched again 2026-12-04: only resellers'
    # pages, none of Replicate's); $0.05/s is the figure remembered from its model page. Check
    # https://replicate.com/kwaivgi/kling-v2.1 before relying on it.
    "kwaivgi/kling-v2.1": {
        "provider": "replicate",
        "mode": "image-to-video",
        "label": "Kling v2.1 image-to-video on Replicate",
        "durations": [5, 10],
        "aspect_ratios": _RATIOS,
        "references": 1,
        "usd_per_second": "0.05",
        "usd_per_second_audio": None,
        "price_note": "no published copy of Replicate's price for this model was found; check its model page",
    },
    # Runway bills API credits at $0.01 each ("A minimum payment of $10 (at $0.01 per credit)", Runway's API setup
    # guide, docs.dev.runwayml.com) and gen4_turbo takes 5 credits per second of video (Runway's own API reference in
    # its runwayml/skills repository, "gen4_turbo | POST /v1/image_to_video | Image required | 5" credits/sec; the
    # same rate on help.runwayml.com "Creating with Gen-4"): $0.05/s. Confirmed from those sources on 2026-12-04.
    "gen4_turbo": {
        "provider": "runway",
        "mode": "image-to-video",
        "label": "Runway Gen-4 Turbo image-to-video",
        "durations": [5, 10],
        "aspect_ratios": _RATIOS,
        "references": 1,
        "usd_per_second": "0.05",
        "usd_per_second_audio": None,
    },
    # Luma's list price for ray-2 at 720p: $0.71 for 5 s, $1.27 for 9 s (the Luma rows of ComfyUI's API-node price
    # table, which passes Luma's prices through, checked 2026-12-04): $0.142/s, so 9 s is billed $1.278 here.
    "ray-2": {
        "provider": "luma",
        "mode": "image-to-video",
        "label": "Luma Ray 2 image-to-video (720p)",
        "durations": [5, 9],
        "aspect_ratios": _RATIOS,
        "references": 1,
        "usd_per_second": "0.142",
        "usd_per_second_audio": None,
    },
}
# Which model runs each mode by default (a request may name another model of the same mode that is offered);
# `manage.py check` (and so migrate, runserver, the worker's start) refuses an id
# that is not in GENERATION_MODELS with a builder and a schema, or that serves another mode.
GENERATION_MODEL_FOR_MODE = {
    "reference-to-video": env("GENERATION_REF_MODEL_ID", default="fal-ai/kling-video/o1/reference-to-video"),
    "image-to-video": env("GENERATION_I2V_MODEL_ID", default="fal-ai/kling-video/v2.6/pro/image-to-video"),
    "text-to-video": env("GENERATION_T2V_MODEL_ID", default="fal-ai/kling-video/v2.6/pro/text-to-video"),
}
FAL_KEY = env("FAL_KEY", default="")
REPLICATE_API_TOKEN = env("REPLICATE_API_TOKEN", default="")
REPLICATE_WEBHOOK_SECRET = env("REPLICATE_WEBHOOK_SECRET", default="")  # whsec_...: signs Replicate's webhooks
RUNWAYML_API_SECRET = env("RUNWAYML_API_SECRET", default="")
LUMAAI_API_KEY = env("LUMAAI_API_KEY", default="")
# Where each client sends its requests: the real APIs, or (tests, benches) a fake on loopback.
REPLICATE_BASE_URL = env("REPLICATE_BASE_URL", default="https://api.replicate.com")
RUNWAYML_BASE_URL = env("RUNWAYML_BASE_URL", default="https://api.dev.runwayml.com")
LUMAAI_BASE_URL = env("LUMAAI_BASE_URL", default="https://api.lumalabs.ai/dream-machine/v1")
# "offline" makes every job an offline preview; anything else (the default, "auto") runs each model on its
# provider when that provider has a key, and as an offline preview when it has none.
GENERATION_PROVIDER: str = env("GENERATION_PROVIDER", default="auto")
REPLICATE_WEBHOOK_TOLERANCE_SECONDS = 300
FAL_WEBHOOK_JWKS_URL = env("FAL_WEBHOOK_JWKS_URL", default="https://rest.alpha.fal.ai/.well-known/jwks.json")
FAL_WEBHOOK_TOLERANCE_SECONDS = 300
GENERATION_USE_WEBHOOKS = env.bool("GENERATION_USE_WEBHOOKS", default=True)
GENERATED_VIDEO_MAX_BYTES = env.int("GENERATED_VIDEO_MAX_BYTES", default=200 * 1024 * 1024)
GENERATION_POLL_SECONDS = env.float("GENERATION_POLL_SECONDS", default=5.0)
GENERATION_TIMEOUT_MINUTES = env.int("GENERATION_TIMEOUT_MINUTES", default=30)
GENERATION_MAX_PROMPT_CHARS = 2500
CELERY_BEAT_SCHEDULE["generation-poll-stale"] = {
    "task": "generation.tasks.poll_stale_jobs",
    "schedule": TASKS_SWEEP_SECONDS,
}

# --- Marketplace ----------------------------------------------------------------------------
# Credits per tier, uses (None = unlimited), validity in days (None = never expires) and the creator's
# royalty in whole percent (rounded down per sale). Exclusive is negotiated: its price is the accepted offer.
LICENSE_TIERS: dict[str, dict[str, Any]] = {
    "single_use": {"label": "Single use", "cost": 10, "uses": 1, "days": 30, "royalty_percent": 20},
    "pack_10": {"label": "Pack of 10", "cost": 80, "uses": 10, "days": 90, "royalty_percent": 15},
    "unlimited": {"label": "Unlimited", "cost": 500, "uses": None, "days": 365, "royalty_percent": 10},
    "exclusive": {"label": "Exclusive", "cost": None, "uses": None, "days": None, "royalty_percent": 50},
}
LICENSE_EXCLUSIVE_MIN_OFFER = env.int("LICENSE_EXCLUSIVE_MIN_OFFER", default=1000)
CREDIT_GRANT_MAX = env.int("CREDIT_GRANT_MAX", default=1_000_000)
GALLERY_PAGE_SIZE = env.int("GALLERY_PAGE_SIZE", default=24)
GALLERY_API_MAX_LIMIT = 100
# The gallery's total is cached this long (0: counted on every request); see marketplace.selectors.GalleryListing.
GALLERY_TOTAL_CACHE_SECONDS = env.int("GALLERY_TOTAL_CACHE_SECONDS", default=30)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "LicenseStatusEnum": "marketplace.models.License.Status",
        "ExclusiveOfferStatusEnum": "marketplace.models.ExclusiveOffer.Status",
        "LedgerEntryKindEnum": "marketplace.models.LedgerEntry.Kind",
        "LicenseTypeEnum": "marketplace.models.LicenseType",
    }
)
