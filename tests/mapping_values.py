"""The relay identity and correlation id the mapping tests map events with."""
from relay.core.identity import RelayIdentity

IDENTITY = RelayIdentity(app_id="mikkoo-relay/0.1.0", origin="relay-1.example.com")
CORRELATION_ID = "5b0c1f4e-2d7e-4c55-a3f6-0c8d5e7a9b10"
