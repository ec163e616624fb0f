"""Lifecycles of Tradevest's entity kinds (reference §4 and the status-code pages).

Every kind starts RECEIVED (passed the API layer) and may fall to INVALID (failed the
asynchronous validation); the rest follows the documented status codes. Where the docs
list statuses without their order the order is inferred, and marked so.
"""

from __future__ import annotations

from schemas.lifecycle import Lifecycle

# RECEIVED → INVALID | CREATED → PENDING → ACTIVE | REVIEW | REJECTED; DECEASED at the end
# (statuses [F-m]; order inferred).
NATURAL_PERSON = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "CREATED"),
        "CREATED": ("PENDING", "ACTIVE", "REJECTED"),
        "PENDING": ("ACTIVE", "REVIEW", "REJECTED"),
        "REVIEW": ("ACTIVE", "REJECTED"),
        "ACTIVE": ("DECEASED",),
    },
)

# Legal entities and representatives follow the natural-person pattern [inferred].
LEGAL_ENTITY = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "CREATED"),
        "CREATED": ("PENDING", "ACTIVE", "REJECTED"),
        "PENDING": ("ACTIVE", "REJECTED"),
    },
)

# RECEIVED, PENDING, APPROVED seen; REJECTED/EXPIRED by the documented pattern.
IDENTIFICATION_VERIFICATION = Lifecycle(
    "RECEIVED",
    {"RECEIVED": ("INVALID", "PENDING"), "PENDING": ("APPROVED", "REJECTED", "EXPIRED")},
)

# CREATED, PENDING, ACTIVE, REJECTED, ESTATE seen; full enum not published.
CUSTOMER = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "CREATED"),
        "CREATED": ("PENDING", "ACTIVE", "REJECTED"),
        "PENDING": ("ACTIVE", "REJECTED"),
        "ACTIVE": ("ESTATE",),
    },
)

# CustomerProductStatus [F]: RECEIVED, INVALID, PENDING, ACTIVE, BLOCKED, RESTRICTED,
# INACTIVE, CLOSED, REJECTED. BLOCKED/RESTRICTED/INACTIVE may return to ACTIVE.
CUSTOMER_PRODUCT = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "PENDING"),
        "PENDING": ("ACTIVE", "REJECTED"),
        "ACTIVE": ("BLOCKED", "RESTRICTED", "INACTIVE", "CLOSED"),
        "BLOCKED": ("ACTIVE", "CLOSED"),
        "RESTRICTED": ("ACTIVE", "CLOSED"),
        "INACTIVE": ("ACTIVE", "CLOSED"),
    },
)

# DocumentStatusEnum [F]: RECEIVED, INVALID, CREATED, PENDING, APPROVED, REJECTED, ARCHIVED.
DOCUMENT = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "CREATED"),
        "CREATED": ("PENDING", "APPROVED", "REJECTED"),
        "PENDING": ("APPROVED", "REJECTED"),
        "APPROVED": ("ARCHIVED",),
        "REJECTED": ("ARCHIVED",),
    },
)

# CREATED → PENDING → APPROVED | REJECTED; INVALID also occurs [F-m].
ONBOARDING = Lifecycle(
    "CREATED",
    {
        "RECEIVED": ("INVALID", "CREATED"),
        "CREATED": ("INVALID", "PENDING"),
        "PENDING": ("APPROVED", "REJECTED"),
    },
)

# RECEIVED seen [F]; the rest inferred from the onboarding pattern.
OFFBOARDING = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "PENDING"),
        "PENDING": ("COMPLETED", "REJECTED"),
    },
)

# Status codes for financial operations [F] plus the webhook-only PLACED,
# PARTIALLY_FILLED and EXPIRED (§3). CANCELED only after a successful cancellation.
TRADITIONAL_ORDER = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "PENDING"),
        "PENDING": ("PLACED", "FILLED", "CANCELED", "REJECTED", "EXPIRED"),
        "PLACED": ("PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED", "EXPIRED"),
        "PARTIALLY_FILLED": ("FILLED", "CANCELED", "EXPIRED"),
        "FILLED": ("SETTLED", "CORRECTED"),
        "CORRECTED": ("CANCELED",),
    },
)

# OrderStatusEnum [F]: RECEIVED, INVALID, PENDING, CANCELED, REJECTED, FILLED, CORRECTED, SETTLED.
DIGITAL_ORDER = Lifecycle(
    "RECEIVED",
    {
        "RECEIVED": ("INVALID", "PENDING"),
        "PENDING": ("FILLED", "CANCELED", "REJECTED"),
        "FILLED": ("SETTLED", "CORRECTED"),
        "CORRECTED": ("CANCELED",),
    },
)

# transactionStatus: only MODIFIED seen [F]; inferred BOOKED → MODIFIED | CANCELED.
TRANSACTION = Lifecycle(
    "BOOKED",
    {
        "PENDING": ("BOOKED", "CANCELED"),
        "BOOKED": ("MODIFIED", "CANCELED"),
        "MODIFIED": ("CANCELED",),
    },
)

# Strategy status: PENDING seen [F]; the rest inferred.
STRATEGY = Lifecycle(
    "PENDING",
    {
        "RECEIVED": ("INVALID", "PENDING"),
        "PENDING": ("ACTIVE", "REJECTED"),
        "ACTIVE": ("INACTIVE", "CLOSED"),
        "INACTIVE": ("ACTIVE", "CLOSED"),
    },
)

# Kinds without a documented GET or status list: ordered by modifiedOn alone.
UNORDERED = Lifecycle("RECEIVED", {})
