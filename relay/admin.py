"""The operator's screens: connections, queues and dead letters."""
from django.contrib import admin

from .forms import BrokerConnectionForm, RelayedQueueForm
from .models import BrokerConnection, DeadLetter, RelayedQueue


@admin.register(BrokerConnection)
class BrokerConnectionAdmin(admin.ModelAdmin):
    form = BrokerConnectionForm
    list_display = ("name", "display_address", "heartbeat", "use_tls")
    search_fields = ("name", "hosts")
    fieldsets = (
        (None, {"fields": ("name", "url", "hosts", "port", "vhost", "username", "password")}),
        ("Timing", {"fields": ("heartbeat", "connect_timeout", "confirm_timeout")}),
        ("TLS (mikkoo ssl_options)", {
            "classes": ("collapse",),
            "fields": ("use_tls", "ca_certs", "ca_path", "ca_data", "tls_protocol", "certfile",
                       "keyfile", "key_password", "ciphers"),
        }),
    )

    @admin.display(description="address")
    def display_address(self, obj):
        return obj.display_address()


@admin.register(RelayedQueue)
class RelayedQueueAdmin(admin.ModelAdmin):
    form = RelayedQueueForm
    list_display = ("name", "queue_name", "consumer_name", "display_source", "connection", "enabled",
                    "confirm", "max_failures", "retry_delay")
    list_filter = ("enabled", "connection")
    search_fields = ("name", "queue_name")
    readonly_fields = ("display_source",)
    fieldsets = (
        (None, {"fields": ("name", "queue_name", "source_url", "display_source", "consumer_name",
                           "connection", "enabled")}),
        ("Delivery", {"fields": ("confirm", "persistent", "max_failures", "retry_delay",
                                 "wait_duration", "unregister")}),
    )

    @admin.display(description="source database")
    def display_source(self, obj):
        return obj.display_source() if obj.pk else "-"


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("event_id", "queue", "event_type", "reason", "failures", "dead_lettered_at")
    list_filter = ("queue",)
    search_fields = ("=event_id",)
    readonly_fields = [f.name for f in DeadLetter._meta.fields]

    def has_add_permission(self, request):
        return False
