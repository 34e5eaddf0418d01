"""The address a request came from, for django-axes' login lockouts (AXES_CLIENT_IP_CALLABLE).

Behind VELO_PROXY_COUNT proxies that each append the address they saw to
X-Forwarded-For, the client is the entry the outermost proxy wrote: that many
from the right. Entries further left are whatever the client sent, so they are
never trusted; with no proxy (the default without VELO_HTTPS) the header is
ignored and REMOTE_ADDR is the client.
"""

from django.conf import settings


def client_ip(request):
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
