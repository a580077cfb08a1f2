from django.urls import path

from blog import views

urlpatterns = [
    path("post/<int:pk>/", views.post_page, name="post"),
    path("post/<int:pk>/comment", views.add_comment, name="comment"),
    path("post/<int:pk>/comment/new", views.add_comment_get, name="comment-get"),
    path("read/<int:pk>/", views.read_page, name="read"),
]

handler400 = "blog.views.bad_request"
handler500 = "blog.views.server_error"
