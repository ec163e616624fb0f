"""Natural persons, legal entities and representatives, identification, customers and their labels, onboardings, products, documents, offboardings: creates and their lifecycles."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.tradevest.contract import (
    Checker,
    error,
    now_iso,
)
from sandbox.tradevest.platform import Platform


class Onboarding(Platform):
    async def create_natural_person(self, request: Request, check: Checker) -> Response:
        for name in ("firstName", "lastName", "birthPlace"):
            check.text(name)
        check.choice("gender", ("MALE", "FEMALE", "DIVERSE"))
        check.text("birthDay", 10, 10)
        check.text("birthCountry", 2, 2)
        check.boolean("isUsNationality")
        check.done()
        return self._create("natural-person", check, self._progress_natural_person)

    async def _progress_natural_person(self, np: dict[str, Any]) -> None:
        await self.step()
        if np.get("firstName") == "Invalid":
            return self.invalid(
                "natural-person", np, "ALREADY_EXISTS_ERROR", "natural person already exists"
            )
        self.set_status("natural-person", np, "CREATED", "CREATED")
        await self.step()
        final = "REJECTED" if np.get("lastName") == "Rejected" else "ACTIVE"
        self.set_status("natural-person", np, final)

    # legal entities: INVALID when legalName starts with "Invalid"

    async def create_legal_entity(self, request: Request, check: Checker) -> Response:
        for name in (
            "legalName",
            "legalForm",
            "registerCountry",
            "registerNumber",
            "registerCourt",
            "taxNumber",
        ):
            check.text(name)
        check.text("foundedOn", 10, 10)
        check.done()
        return self._create("legal-entity", check, self._progress_legal_entity)

    async def _progress_legal_entity(self, le: dict[str, Any]) -> None:
        await self.step()
        if str(le.get("legalName", "")).startswith("Invalid"):
            return self.invalid("legal-entity", le, "VALIDATION_FAILED", "register entry not found")
        self.set_status("legal-entity", le, "CREATED", "CREATED")
        await self.step()
        self.set_status("legal-entity", le, "ACTIVE")

    # legal representatives: INVALID when the legal entity is unknown

    async def create_legal_representative(self, request: Request, check: Checker) -> Response:
        for name in ("firstName", "lastName", "birthPlace", "function"):
            check.text(name)
        check.text("birthDay", 10, 10)
        if (
            not isinstance(check.body.get("birthCountry"), str)
            or len(check.body["birthCountry"]) != 2
        ):
            check.bad("birthCountry", "FORMAT", "ISO 3166 alpha-2")
        for name in ("isUsNationality", "soleSignatureAuthorized", "fatcaControllingPerson"):
            check.boolean(name)
        check.done()
        le = request.path_params["legalEntityId"]
        return self._create(
            "legal-representative",
            check,
            self._progress_legal_representative,
            {"legalEntityId": le},
        )

    async def _progress_legal_representative(self, lr: dict[str, Any]) -> None:
        await self.step()
        if lr["legalEntityId"] not in self.store["legal-entity"]:
            return self.invalid(
                "legal-representative", lr, "LEGAL_ENTITY_NOT_FOUND_ERROR", "no such legal entity"
            )
        self.set_status("legal-representative", lr, "CREATED", "CREATED")

    # identification verifications: INVALID for an unknown natural person; APPROVED makes
    # the platform create an IDENTIFICATION_CERTIFICATE document (an id never seen before)

    async def create_identification(self, request: Request, check: Checker) -> Response:
        check.uuid("naturalPersonId")
        check.choice("externalVerifier", ("WEB_ID",))
        check.choice("identificationType", ("VIDEO_IDENT",))
        check.done()
        return self._create("identification-verification", check, self._progress_identification)

    async def _progress_identification(self, iv: dict[str, Any]) -> None:
        kind = "identification-verification"
        await self.step()
        if iv["naturalPersonId"] not in self.store["natural-person"]:
            return self.invalid(
                kind, iv, "NATURAL_PERSON_NOT_FOUND_ERROR", "no such natural person"
            )
        self.set_status(
            kind,
            iv,
            "PENDING",
            "CREATED",
            identificationUrl=f"https://ident.example/{iv['identificationVerificationId']}",
        )
        await self.step()
        document = self._new(
            "document",
            {"resourceType": "NATURAL_PERSON", "resourceId": iv["naturalPersonId"],
             "type": "IDENTIFICATION_CERTIFICATE", "name": "identification.pdf", "size": 120},
            status="CREATED",
        )  # fmt: skip
        self.set_status("document", document, "CREATED", "CREATED")
        self.set_status(kind, iv, "APPROVED", documentId=document["documentId"])
        await self.step()
        self.set_status("document", document, "APPROVED")

    # customers: INVALID when the entity is unknown; ACTIVE once onboarded

    async def create_customer(self, request: Request, check: Checker) -> Response:
        check.uuid("entityId")
        check.choice("entityType", ("NATURAL_PERSON", "LEGAL_ENTITY", "JOINT_PERSON"))
        labels = check.body.get("labels", [])
        if not isinstance(labels, list) or len(labels) > 16:
            check.bad("labels", "MAX_ITEMS", "up to 16 strings")
        check.done()
        return self._create("customer", check, self._progress_customer, {"labels": labels})

    async def _progress_customer(self, customer: dict[str, Any]) -> None:
        await self.step()
        known = (
            customer["entityId"] in self.store["natural-person"]
            or customer["entityId"] in self.store["legal-entity"]
        )
        if not known:
            return self.invalid("customer", customer, "ENTITY_NOT_FOUND_ERROR", "no such entity")
        self.set_status("customer", customer, "CREATED", "CREATED")

    # labels [inferred path]: {customerIds, labels} → one LABELS_UPDATE_NOTIFICATION

    async def update_labels(self, request: Request, check: Checker) -> Response:
        ids = check.body.get("customerIds")
        labels = check.body.get("labels")
        if not isinstance(ids, list) or not ids or not isinstance(labels, list):
            check.bad("customerIds", "REQUIRED", "customerIds and labels are required lists")
        check.done()
        assert isinstance(ids, list)  # check.done() raised otherwise
        found = [c for c in ids if c in self.store["customer"]]
        for c in found:
            customer = self.store["customer"][c]
            customer["labels"] = labels
            customer["modifiedOn"] = now_iso()
        body: dict[str, Any] = {"updatedCustomers": found, "notificationType": "UPDATED"}
        if len(found) < len(ids):
            body["notificationType"] = "VALIDATION_ERROR"
            body["validationError"] = {
                "errorType": "CUSTOMERS_NOT_FOUND_ERROR",
                "description": "some customers not found",
            }
        self.deliverer.notify("LABELS_UPDATE_NOTIFICATION", body, ",".join(found))
        return Response(status_code=202)

    # onboardings: CREATED → PENDING → APPROVED (customer ACTIVE) | REJECTED when the
    # customer carries the label REJECT_ONBOARDING; INVALID for an unknown entity

    async def create_onboarding(self, request: Request, check: Checker) -> Response:
        check.choice("entityType", ("CUSTOMER", "PROXY", "BENEFICIAL_OWNER"))
        check.uuid("entityId")
        check.done()
        external_id = self._claim_external_id(check)
        if external_id is not None and external_id in self.external_ids:
            return error(409, "externalId already used", "DUPLICATE_EXTERNAL_ID")
        onboarding = self._new("onboarding", check.body, status="CREATED")
        self.spawn(self._run(self._progress_onboarding, onboarding))
        return JSONResponse({"onboardingId": onboarding["onboardingId"]})

    async def _progress_onboarding(self, ob: dict[str, Any]) -> None:
        customer = self.store["customer"].get(ob["entityId"])
        if customer is None:
            await self.step()
            return self.invalid("onboarding", ob, "ENTITY_NOT_FOUND_ERROR", "no such customer")
        self.set_status("onboarding", ob, "CREATED", "CREATED")
        await self.step()
        self.set_status("onboarding", ob, "PENDING")
        await self.step()
        if "REJECT_ONBOARDING" in customer.get("labels", []):
            return self.set_status("onboarding", ob, "REJECTED", rejectionReason="KYC_CHECK_FAILED")
        self.set_status("onboarding", ob, "APPROVED")
        self.set_status("customer", customer, "ACTIVE")

    # customer products: INVALID for an unknown customer

    async def create_product(self, request: Request, check: Checker) -> Response:
        check.choice(
            "productCode", ("WALLET", "BALANCE_ACCOUNT", "DEPOSITORY_ACCOUNT", "CURRENCY_WALLET")
        )
        check.done()
        customer = request.path_params["customerId"]
        return self._create(
            "customer-product",
            check,
            self._progress_product,
            {"customerId": customer, "currency": "EUR"},
        )

    async def _progress_product(self, product: dict[str, Any]) -> None:
        await self.step()
        if product["customerId"] not in self.store["customer"]:
            return self.invalid(
                "customer-product", product, "CUSTOMERS_NOT_FOUND_ERROR", "no such customer"
            )
        self.set_status("customer-product", product, "PENDING", "CREATED")
        await self.step()
        if product["productCode"] == "BALANCE_ACCOUNT":
            self.balances[product["customerProductId"]] = Decimal("10000.00")
        self.set_status("customer-product", product, "ACTIVE")

    async def close_product(self, request: Request, check: Checker) -> Response:
        """PATCH /products/{customerProductId} `{status: "CLOSED"}` (CustomerProductUpdate,
        tradevest-api.md §4.5): closed, notified [inferred: the answer's status, 200]."""
        product = self.store["customer-product"].get(request.path_params["id"])
        if product is None:
            return error(404, "Not found", "NOT_FOUND")
        check.choice("status", ("CLOSED",))
        check.done()
        if product["status"] != "CLOSED":
            self.set_status("customer-product", product, "CLOSED")
        return Response(status_code=200)

    async def sign_document(self, request: Request, check: Checker) -> Response:
        """POST /v2/documents/sign `{partnerDocumentId, naturalPersonId, customerId?}` → 202
        (tradevest-api.md §4.6)."""
        check.uuid("partnerDocumentId")
        check.uuid("naturalPersonId")
        check.uuid("customerId", required=False)
        check.done()
        if check.body["naturalPersonId"] not in self.store["natural-person"]:
            return error(404, "Natural person not found", "NOT_FOUND")
        self.signatures.append(dict(check.body))
        return Response(status_code=202)

    # documents [inferred JSON upload]: INVALID when the resource is unknown

    async def create_document(self, request: Request, check: Checker) -> Response:
        check.choice(
            "resourceType",
            ("NATURAL_PERSON", "LEGAL_ENTITY", "PARTNER_USER", "CUSTOMER", "PROXY", "JOINT_PERSON"),
        )
        check.uuid("resourceId")
        check.text("type", 1, 64)
        check.text("name")
        check.text("content", 1, 10_000_000)
        check.done()
        extra = {"size": len(check.body["content"]) * 3 // 4 // 1024}
        return self._create("document", check, self._progress_document, extra)

    async def _progress_document(self, document: dict[str, Any]) -> None:
        await self.step()
        resource = document["resourceId"]
        if not any(
            resource in self.store[k] for k in ("natural-person", "legal-entity", "customer")
        ):
            return self.invalid(
                "document", document, "RESOURCE_NOT_FOUND_ERROR", "no such resource"
            )
        self.set_status("document", document, "CREATED", "CREATED")
        await self.step()
        self.set_status("document", document, "APPROVED")

    # offboardings: INVALID for an unknown entity

    async def create_offboarding(self, request: Request, check: Checker) -> Response:
        check.choice("entityType", ("CUSTOMER", "NATURAL_PERSON", "LEGAL_ENTITY"))
        check.uuid("entityId")
        check.text("reason", 1, 64)
        check.done()
        return self._create("offboarding", check, self._progress_offboarding)

    async def _progress_offboarding(self, ob: dict[str, Any]) -> None:
        await self.step()
        if not any(
            ob["entityId"] in self.store[k] for k in ("customer", "natural-person", "legal-entity")
        ):
            return self.invalid("offboarding", ob, "ENTITY_NOT_FOUND_ERROR", "no such entity")
        self.set_status("offboarding", ob, "PENDING", "CREATED")
        await self.step()
        self.set_status("offboarding", ob, "COMPLETED")

    # transfers: INVALID for an unknown customerProductId; REJECTED above the balance
