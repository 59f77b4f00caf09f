"""Pydantic messages (journey, playbook) and the database tables, one module per concern."""
