"""Which deliverer a worker uses: the built-in one for DELIVERY_MODE, or CMRELAY_DELIVERER's."""

from __future__ import annotations

import importlib

from cmrelay.errors import ConfigurationError
from worker.delivery.api import deliverer as api_deliverer
from worker.delivery.contract import Deliverer, DelivererFactory, DeliveryContext
from worker.delivery.webhook import deliverer as webhook_deliverer


def load_deliverer(context: DeliveryContext) -> Deliverer:
    """Build the deliverer named by CMRELAY_DELIVERER ("module:factory"), else the built-in."""
    name = context.settings.deliverer
    if not name:
        return _builtin_deliverer(context)
    module_name, _, attr = name.partition(":")
    try:
        factory: DelivererFactory = getattr(importlib.import_module(module_name), attr or "build")
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"CMRELAY_DELIVERER: cannot load {name}: {exc}") from None
    return factory(context)


def _builtin_deliverer(context: DeliveryContext) -> Deliverer:
    """The REST API deliverer (DELIVERY_MODE=api) or the Actions webhook one (webhook)."""
    context.settings.require_delivery()
    if context.settings.delivery_mode == "webhook":
        return webhook_deliverer.build(context)
    return api_deliverer.build(context)
