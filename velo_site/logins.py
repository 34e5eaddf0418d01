"""Login throttling with django-axes: its authentication backend, and the client's address.

Behind VELO_PROXY_COUNT proxies that each append the address they saw to
X-Forwarded-For, the client is the entry the outermost proxy wrote: that many
from the right. Entries further left are whatever the client sent, so they are
never trusted; with no proxy (the default without VELO_HTTPS) the header is
ignored and REMOTE_ADDR is the client.
"""

from axes.backends import AxesStandaloneBackend
from django.conf import settings


class LoginThrottle(AxesStandaloneBackend):
    """Axes' lockout check, for logins over HTTP.

    Axes refuses (raises) an authenticate() without a request; one without a
    request is no login over HTTP (a script, the shell, the test client's
    login()), so there is nothing to throttle and the next backend decides.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request):
    """AXES_CLIENT_IP_CALLABLE: the address a login came from."""
    remote = request.META.get("REMOTE_ADDR")
    hops = settings.VELO_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [
        address.strip()
        for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if address.strip()
    ]
    # Fewer entries than proxies: the request did not come through all of them.
    return forwarded[-hops] if len(forwarded) >= hops else remote
