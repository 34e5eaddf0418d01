"""Pages timed through Django's test Client: the full request stack, in this process."""

from django.contrib.auth import get_user_model
from django.test import Client

from .timing import median_time


def client(logged_in=True):
    c = Client()
    if logged_in:
        c.force_login(get_user_model().objects.get(username="bench"))
    return c


def page_time(c, url, repeats):
    """Median seconds of GET `url` (after one warm-up), and the last response's size in bytes."""
    sizes = []

    def get():
        response = c.get(url)
        assert response.status_code == 200, (url, response.status_code)
        sizes.append(len(response.content))

    seconds, _ = median_time(get, repeats)
    return seconds, sizes[-1]
