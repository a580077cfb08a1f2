import random
from wagtail.models import Page
from home.models import HomePage
home = HomePage.objects.first()
words = "sqlite wal journal page cms lock fsync index query write read cache".split()
for i in range(300):
    title = f"Page {i} " + " ".join(random.choice(words) for _ in range(5))
    p = HomePage(title=title, slug=f"p{i}")
    home.add_child(instance=p)
    p.save_revision().publish()
print(Page.objects.count())
