import sys

from django.db import OperationalError
from django.db.models import F
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.defaults import bad_request as default_bad_request
from django.views.defaults import server_error as default_server_error

from .models import Comment, Post


def post_page(request, pk):
    """A page view: the visitor's session is read and changed (a 'visits' counter,
    as a real site would keep recently-viewed state), the post and its latest 10
    comments are read and rendered, and the view counter is bumped with F()."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    post = get_object_or_404(Post, pk=pk)
    comments = list(post.comments.order_by("-created")[:10])
    Post.objects.filter(pk=pk).update(views=F("views") + 1)
    return render(request, "blog/post.html", {"post": post, "comments": comments})


@csrf_exempt
@require_POST
def add_comment(request, pk):
    """Adds a comment; the response carries its id so acknowledged writes can be
    checked against the database afterwards."""
    post = get_object_or_404(Post, pk=pk)
    comment = Comment.objects.create(post=post, body=request.POST.get("body", "")[:2000])
    return JsonResponse({"id": comment.id}, status=201)


def add_comment_get(request, pk):
    """The same comment post as a GET (?body=...), for load generators that send one fixed
    list of URLs (calibration/run --oha): the view and its SQL are add_comment's."""
    post = get_object_or_404(Post, pk=pk)
    comment = Comment.objects.create(post=post, body=request.GET.get("body", "")[:2000])
    return JsonResponse({"id": comment.id}, status=201)


def read_page(request, pk):
    """Pure read: same page without touching the session or the counter.  Sent
    without a session cookie, so SessionMiddleware does not save anything."""
    post = get_object_or_404(Post, pk=pk)
    comments = list(post.comments.order_by("-created")[:10])
    return render(request, "blog/post.html", {"post": post, "comments": comments})


def _locked(exc):
    """True if exc, or an exception it was raised from/while handling, is SQLite's
    'database is locked' (or 'database table is locked') OperationalError."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OperationalError) and "is locked" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _locked_response(where):
    resp = HttpResponse("database is locked\n", status=503, content_type="text/plain")
    resp["X-Db-Locked"] = where
    return resp


def server_error(request):
    # Called by Django's exception handling while the exception is being handled.
    if _locked(sys.exc_info()[1]):
        return _locked_response("query")
    return default_server_error(request)


def bad_request(request, exception):
    # The DB session backend turns a failed session UPDATE (e.g. 'database is
    # locked') into UpdateError -> SessionInterrupted, which stock Django answers
    # with 400.  We answer 503 with the marker instead, so the runner can count it.
    if _locked(exception):
        return _locked_response("session")
    return default_bad_request(request, exception)
