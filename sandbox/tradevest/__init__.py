"""Tradevest under /tradevest, faithful to shared/reference/tradevest-api.md.

Creates are validated synchronously (400 with an ErrorMessage, 409 on a reused externalId),
answered RECEIVED, then processed asynchronously with a notification per status change:
RECEIVED → INVALID (a reference that does not exist) | the kind's created status → … .
Deterministic triggers let tests pick a branch (documented in `_progress_*`).

The platform (platform.py: state, auth, faults, generic reads, status changes) and its parts
by area: onboarding.py, trading.py, subscriptions.py (tokens, webhooks, recovery); the
fixtures and request checks in contract.py.
"""

from __future__ import annotations

from starlette.routing import Route

from sandbox.tradevest.contract import (
    BALANCE_ACCOUNT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    CUSTOMER_FILTERS,
    CUSTOMER_ID,
    DEPOSITORY_ACCOUNT_ID,
    DOCUMENT_FILTERS,
    NATURAL_PERSON_ID,
    WALLET_ID,
)
from sandbox.tradevest.onboarding import Onboarding
from sandbox.tradevest.subscriptions import Subscriptions
from sandbox.tradevest.trading import Trading

# the fixtures' ids and credentials (sandbox/app.py's index page, the tests)
__all__ = [
    "BALANCE_ACCOUNT_ID", "CLIENT_ID", "CLIENT_SECRET", "CUSTOMER_ID", "DEPOSITORY_ACCOUNT_ID",
    "NATURAL_PERSON_ID", "WALLET_ID", "Tradevest",
]  # fmt: skip


class Tradevest(Onboarding, Trading, Subscriptions):
    """The fake: its routes, each on the part of the platform that serves it."""

    def routes(self) -> list[Route]:
        r = Route
        return [
            r("/oauth2/token", self.token, methods=["POST"]),
            r("/connect/token", self.token, methods=["POST"]),
            r("/webhooks", self.webhooks, methods=["GET", "POST"]),
            r("/webhooks/{eventType}", self.webhook, methods=["GET", "DELETE"]),
            r("/webhooks-missing", self.webhooks_missing, methods=["GET"]),
            r("/undelivered-webhooks", self.undelivered_webhooks, methods=["GET"]),
            r("/entities/natural-persons", self.api(self.create_natural_person, self.lister("natural-person", filters={"status": "naturalPersonStatus"})), methods=["GET", "POST"]),
            r("/entities/natural-persons/{id}", self.getter("natural-person"), methods=["GET"]),
            r("/entities/legal-entities", self.api(self.create_legal_entity, self.lister("legal-entity", filters={"status": "status"})), methods=["GET", "POST"]),
            r("/entities/legal-entities/{id}", self.getter("legal-entity"), methods=["GET"]),
            r("/entities/{legalEntityId}/legal-representatives", self.api(self.create_legal_representative, self.lister("legal-representative", by="legalEntityId", path_param="legalEntityId", filters={"status": "status"}), requestor=True), methods=["GET", "POST"]),
            r("/entities/legal-representatives/{id}", self.getter("legal-representative"), methods=["GET"]),
            r("/entities/identification-verifications", self.api(self.create_identification, self.lister("identification-verification"), requestor=True), methods=["GET", "POST"]),
            r("/entities/identification-verifications/{id}", self.getter("identification-verification", requestor=True), methods=["GET"]),
            r("/roles/customers", self.api(self.create_customer, self.lister("customer", filters=CUSTOMER_FILTERS), requestor=True), methods=["GET", "POST"]),
            r("/roles/customers/labels", self.api(self.update_labels, None), methods=["POST"]),
            r("/roles/customers/{id}", self.getter("customer"), methods=["GET"]),
            r("/customers/{customerId}/products", self.api(self.create_product, self.list_products, requestor=True), methods=["GET", "POST"]),
            r("/products/{id}", self.api(self.close_product, self.getter("customer-product"), requestor=False), methods=["GET", "PATCH"]),
            r("/v2/documents", self.api(self.create_document, self.lister("document", filters=DOCUMENT_FILTERS)), methods=["GET", "POST"]),
            r("/v2/documents/sign", self.api(self.sign_document, None), methods=["POST"]),
            r("/v2/documents/{id}", self.getter("document"), methods=["GET"]),
            r("/onboardings", self.api(self.create_onboarding, self.list_plain("onboarding"), requestor=True), methods=["GET", "POST"]),
            r("/onboardings/{id}", self.getter("onboarding"), methods=["GET"]),
            r("/entities/offboardings", self.api(self.create_offboarding, self.list_plain("offboarding"), requestor=True), methods=["GET", "POST"]),
            r("/entities/offboardings/{id}", self.getter("offboarding"), methods=["GET"]),
            r("/transfers", self.api(self.create_transfer, self.lister("transfer", filters={"externalId": "externalId"})), methods=["GET", "POST"]),
            r("/transfers/{id}", self.getter("transfer"), methods=["GET"]),
            r("/transfers-test/incoming-transfer", self.api(self.incoming_test_transfer, None), methods=["POST"]),
            r("/trading/ex-ante", self.api(self.ex_ante, None, requestor=True), methods=["POST"]),
            r("/trading/order/{orderType}", self.api(self.create_traditional_order, None, requestor=True), methods=["POST"]),
            r("/trading/order/{id}", self.api(self.change_traditional_order, self.getter("traditional-order"), requestor=True), methods=["GET", "PATCH", "DELETE"]),
            r("/products/{productId}/trading/orders", self.lister("traditional-order", by="depositoryCustomerProductId", filters={"externalId": "externalId"}), methods=["GET"]),
            r("/digital/orders/market", self.api(self.create_digital_order, None, requestor=True), methods=["POST"]),
            r("/digital/orders/{id}", self.getter("digital-order"), methods=["GET"]),
            r("/products/{productId}/digital/orders", self.lister("digital-order", by="walletCustomerProductId", filters={"externalId": "externalId"}), methods=["GET"]),
            r("/transactions/{id}", self.getter("transaction"), methods=["GET"]),
            r("/customers/{customerId}/transactions", self.lister("transaction", by="customerId", path_param="customerId", filters={"transactionType": "transactionType"}), methods=["GET"]),
            r("/strategies", self.api(self.create_strategy, self.lister("strategy"), requestor=True), methods=["GET", "POST"]),
            r("/strategies/{id}", self.getter("strategy"), methods=["GET"]),
        ]  # fmt: skip
