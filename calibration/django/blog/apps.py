import os

from django.apps import AppConfig


class BlogConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "blog"

    def ready(self):
        if os.environ.get("CALIB_STATS_DIR"):
            from . import stats

            stats.patch_backend()
