"""The customer's page: signed links to it (links.py), what it shows (view.py), and its
routes (pages.py, served by the HTTP API)."""
