"""The HTTP service: the API and the pure modules it calls (CRM webhook mappings)."""
