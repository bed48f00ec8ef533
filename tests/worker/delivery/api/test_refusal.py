"""Reading ChartMogul's refusals of custom attributes (pure)."""

from __future__ import annotations

import json

import pytest

from cmrelay.errors import PermanentDeliveryError
from worker.delivery.api.refusal import attribute_refusal

SENT = {"seats", "plan", "seats_max"}


def _refusal(body: object, status: int = 422) -> PermanentDeliveryError:
    text = body if isinstance(body, str) else json.dumps(body)
    return PermanentDeliveryError("refused", status=status, body=text)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # The sandbox's wording for a type conflict and for a value the type refuses.
        ({"errors": {"custom.seats": "Attribute already exists with type Integer."}},
         {"seats": "Integer"}),
        ({"errors": {"custom.seats": "Value 'Boolean' is not a valid Decimal."}},
         {"seats": "Decimal"}),  # a quoted value is not the type
        ({"errors": {"custom": "Key 'seats_max' may only contain letters."}}, {"seats_max": None}),
        # Rails-style lists and full messages, and a body cut short mid-way.
        ({"errors": {"attributes.custom.plan": ["has already been taken as String"]}},
         {"plan": "String"}),
        ({"errors": ["seats_max already exists with type Timestamp"]}, {"seats_max": "Timestamp"}),
        ('{"errors": {"custom.seats": "Attribute already exists with type Integer.", "cus',
         {"seats": "Integer"}),
        # About attributes, but naming none of ours.
        ({"errors": {"custom": "Must be a non-empty list."}}, {}),
        ({"code": 422, "message": "Invalid attribute", "param": "attributes"}, {}),
    ],
)  # fmt: skip
def test_the_keys_named_and_their_types_are_read(body: object, expected: dict[str, str]) -> None:
    assert attribute_refusal(_refusal(body), SENT) == expected


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"errors": {"country": "Country must be an ISO 3166-1 alpha-2 code (plan)."}}, 422),
        ({"errors": {"external_id": "The external ID already exists."}}, 422),
        ({"code": 404, "message": "Customer not found"}, 404),
        ({"errors": {"custom.seats": "Attribute already exists with type Integer."}}, 500),
        ("<html>bad gateway</html>", 422),
    ],
)
def test_other_refusals_are_not_about_attributes(body: object, status: int) -> None:
    assert attribute_refusal(_refusal(body, status), SENT) is None
