"""Velo's URLs, and the stock admin site the DLQ admin is compared with."""

from django.urls import path

from velo_site.urls import urlpatterns as velo_urlpatterns

from .stock_admin import payload_site, site

urlpatterns = [
    path("bench-stock-admin/", site.urls),
    path("bench-stock-payload-admin/", payload_site.urls),
    *velo_urlpatterns,
]
