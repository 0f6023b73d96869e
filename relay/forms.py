"""Admin forms that never render a stored secret back to the browser."""
from __future__ import annotations

from django import forms

from .models import BrokerConnection, RelayedQueue


class SecretFieldsForm(forms.ModelForm):
    """A model form whose secret fields render empty; left blank they keep the stored value."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            field = self.fields[name]
            field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            if self.instance.pk and getattr(self.instance, name):
                field.required = False
                field.help_text = f"{field.help_text} (A value is stored.)"

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            for name in self.secret_fields:
                if not cleaned.get(name):
                    cleaned[name] = getattr(self.instance, name)
        return cleaned


class BrokerConnectionForm(SecretFieldsForm):
    secret_fields = ("url", "password", "key_password")

    class Meta:
        model = BrokerConnection
        fields = "__all__"


class RelayedQueueForm(SecretFieldsForm):
    secret_fields = ("source_url", "target_url")

    class Meta:
        model = RelayedQueue
        fields = "__all__"
