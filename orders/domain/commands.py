"""Commands: what a client asks the service to do."""

from __future__ import annotations

from typing import Annotated

import msgspec

from orders.domain.callers import ANONYMOUS_OWNER

# Text fields refuse NUL (PostgreSQL cannot store it in jsonb or text) and are bounded so that
# a single field cannot carry the whole body.
NoNulText = Annotated[str, msgspec.Meta(pattern=r"^[^\x00]*$", max_length=500)]
NonBlankText = Annotated[str, msgspec.Meta(pattern=r"^[^\x00]*[^\x00\s][^\x00]*$", max_length=500)]
ProductId = Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]
# Bounded so that a total cannot overflow a bigint; the business limit on the total is
# decided (and recorded) in `decide`, far below these.
Price = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10**6)]


class ProductLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One line of an order: a product, its unit price in minor units, and how many."""

    id: ProductId
    price: Price
    name: NoNulText | None = None
    quantity: Quantity = 1


class OrderRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of a create request, exactly as clients send it."""

    products: list[ProductLine]
    shipping_to: NonBlankText


class CreateOrder(msgspec.Struct, frozen=True):
    """Create the order that `owner` asks for under the key `request_id`."""

    request_id: str
    products: list[ProductLine]
    shipping_to: str
    owner: str = ANONYMOUS_OWNER

    @classmethod
    def from_request(
        cls, request_id: str, request: OrderRequest, owner: str = ANONYMOUS_OWNER
    ) -> CreateOrder:
        return cls(
            request_id=request_id,
            products=request.products,
            shipping_to=request.shipping_to,
            owner=owner,
        )


# The order's later life: what a client sends to move an order along, and the command each
# becomes once the caller and its key are known. The bodies are strict: a field a client
# misspells is refused rather than ignored.

ShortText = Annotated[str, msgspec.Meta(pattern=r"^[^\x00]*[^\x00\s][^\x00]*$", max_length=200)]
Amount = Annotated[int, msgspec.Meta(ge=0, le=10**15)]


class PayRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of a pay request: the amount paid in minor units (the order's total) and the
    payment provider's reference."""

    amount: Amount
    reference: ShortText


class ShipRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    carrier: ShortText
    tracking: ShortText


class DeliverRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A delivery carries nothing but the fact."""


class CancelRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    reason: NoNulText | None = None


LifecycleRequest = PayRequest | ShipRequest | DeliverRequest | CancelRequest


class OrderCommand(msgspec.Struct, frozen=True):
    """Do `request` to an order, as `by` asked under its key `request_id` (keys are scoped to
    the caller and the order)."""

    request_id: str
    by: str
    request: LifecycleRequest
