"""The routers of the alert API, one module per resource."""
