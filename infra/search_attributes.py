"""Register the onboarding search attributes on the namespace (idempotent).

Run by the worker at start-up, so `make run` needs no manual step. Where the operator API is
not open to us (Temporal Cloud), register them once with the Cloud UI or tcld instead.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.service import RPCError

from workflows.contract import SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)


async def missing_search_attributes(client: Client) -> list[SearchAttributeKey[Any]]:
    """The onboarding search attributes the namespace does not know (RPCError if unreadable)."""
    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [key for key in SEARCH_ATTRIBUTES if key.name not in known.custom_attributes]


async def register_search_attributes(client: Client) -> None:
    try:
        missing = {
            key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
            for key in await missing_search_attributes(client)
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(sorted(missing)))
    except RPCError as error:
        log.warning(
            "could not register search attributes (%s); register %s on the namespace",
            error.message,
            ", ".join(
                f"{k.name}={SearchAttributeIndexedValueType(k.indexed_value_type).name}"
                for k in SEARCH_ATTRIBUTES
            ),
        )
