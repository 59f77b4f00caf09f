"""What `csm list` prints, as a model (its `--json` is this dumped; `status` and `list` print
service/views.py's).

In a module of its own, imported by that command when it runs: a pydantic model costs
its schema as it is defined, and `--help` needs none (cli/app.py)."""

from __future__ import annotations

from pydantic import BaseModel


class CsmLine(BaseModel):
    id: str
    name: str
    email: str
    touch_models: list[str]
    industries: list[str]
    chat: str | None
    active_onboardings: int
    capacity: int
    active: bool
