"""The reference for the DLQ admin: a plain ModelAdmin, as `admin.register` would give anyone.

A second site has the same admin searching the record too (search_fields over the JSON column):
the stock way to find a payload value, the reference of the payload search figure.
"""

from django.contrib import admin

from dlq.models import DLQEntry

site = admin.AdminSite(name="bench_stock_admin")


class StockDLQEntryAdmin(admin.ModelAdmin):
    # The columns Velo's list shows (its `error` and `node` cells are made of these).
    list_display = (
        "id",
        "job",
        "status",
        "error_type",
        "error_message",
        "attempts",
        "node_name",
        "created_at",
    )
    list_filter = ("job", "status", "error_group")
    search_fields = ("error_message",)


class StockPayloadSearchAdmin(StockDLQEntryAdmin):
    search_fields = ("error_message", "payload")


site.register(DLQEntry, StockDLQEntryAdmin)
payload_site = admin.AdminSite(name="bench_stock_payload_admin")
payload_site.register(DLQEntry, StockPayloadSearchAdmin)
