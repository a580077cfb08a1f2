"""Fill a fresh database: N posts with M comments each, and K sessions whose keys
are written one per line to --keys-file (the load generator's visitors)."""
import random

from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand
from django.db import transaction

from blog.models import Comment, Post

WORDS = ("sqlite wal journal lock busy page cache fsync commit reader writer django "
         "session comment post view counter index btree checkpoint").split()


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


class Command(BaseCommand):
    help = "Seed posts, comments and sessions for the calibration load"

    def add_arguments(self, parser):
        parser.add_argument("--posts", type=int, default=1000)
        parser.add_argument("--comments", type=int, default=5, help="per post")
        parser.add_argument("--sessions", type=int, default=1000)
        parser.add_argument("--keys-file", required=True)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **o):
        rng = random.Random(o["seed"])
        with transaction.atomic():
            Post.objects.bulk_create(
                Post(title=text(rng, 6), body=text(rng, rng.randint(150, 600)), views=0)
                for _ in range(o["posts"])
            )
            ids = list(Post.objects.values_list("id", flat=True))
            Comment.objects.bulk_create(
                (Comment(post_id=pid, body=text(rng, rng.randint(10, 50)))
                 for pid in ids for _ in range(o["comments"])),
                batch_size=500,
            )
            keys = []
            for i in range(o["sessions"]):
                s = SessionStore()
                s["visitor"] = i
                s["visits"] = 0
                s.create()
                keys.append(s.session_key)
        with open(o["keys_file"], "w") as f:
            f.write("\n".join(keys) + "\n")
        self.stdout.write(f"seeded {len(ids)} posts, {len(ids) * o['comments']} comments, "
                          f"{len(keys)} sessions")
