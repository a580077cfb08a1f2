# The write endpoint of the Wagtail proof (#28): POST /publish/ picks a random page
# (order_by('?'), which Django compiles to its registered RAND()) and publishes a new
# revision of it with Wagtail's own API (save_revision().publish(): several DEFERRED atomic
# blocks writing the revision, the page, its log entry and reference index), as an editor
# publishing from the admin would; the statements are Wagtail's. Copied into the project by
# calibration/wagtail/run.
import random

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from home.models import HomePage


@csrf_exempt
def publish(request):
    page = HomePage.objects.filter(depth__gt=2).order_by("?").first()
    page.title = page.title.split(" #")[0] + f" #{random.randint(0, 10**6)}"
    page.save_revision().publish()
    return HttpResponse(f"published {page.pk}\n")
