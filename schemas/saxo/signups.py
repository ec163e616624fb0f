"""Client signups (cm.yaml, Services.ClientManagement): the whole client in one POST.

The spec's SignUpRequest is large; the sections partnersync reads are typed here (personal
data marked Sensitive), the others pass through as given. Field names as in the spec:
`SignUpId` (not SignupId), `OnboardingSubState` (not OnboardingSubStatus).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec

from schemas.lifecycle import Lifecycle
from schemas.sensitive import Sensitive

Private = Annotated[str, Sensitive]


class OnboardingAddress(msgspec.Struct, kw_only=True, omit_defaults=True):
    StreetName: Private | None = None
    BuildingNumber: Private | None = None
    City: Private | None = None
    PostalCode: Private | None = None
    CountryCode: str | None = None  # an option value (validated against the options)


class PersonalInformation(msgspec.Struct, kw_only=True, omit_defaults=True):
    FirstName: Annotated[str, msgspec.Meta(min_length=1, max_length=100), Sensitive]
    LastName: Annotated[str, msgspec.Meta(min_length=1, max_length=100), Sensitive]
    DateOfBirth: Annotated[date, Sensitive]
    CountryOfBirth: str | None = None
    CityOfBirth: Private | None = None
    NationalityCode: str | None = None
    TaxId: Private | None = None
    PersonalId: Private | None = None
    ResidentialAddress: OnboardingAddress | None = None
    ContactInformation: Annotated[dict[str, Any], Sensitive] | None = None  # e-mail, phones
    PoliticallyExposedPerson: bool | None = None


class AccountInformation(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The account configuration agreed with the Saxo account manager."""

    ClientCategoryId: str | None = None
    IntendedCommissionGroupId: str | None = None
    IntendedTemplateId: str | None = None
    CurrencyCode: str | None = None
    DefaultChoiceOfAccount: str | None = None
    AdditionalChoiceOfAccounts: list[str] = []
    ModelId: str | None = None
    OtherInstructions: str | None = None


class SignUpRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    PersonalInformation: PersonalInformation
    RegulatoryInformation: dict[str, Any]
    AccountInformation: AccountInformation | None = None
    ProfileInformation: dict[str, Any] | None = None
    BankInformation: Annotated[dict[str, Any], Sensitive] | None = None
    GlobalFinancialInformation: dict[str, Any] | None = None
    OnboardingInformation: dict[str, Any] | None = None


class SignUpResponse(msgspec.Struct, kw_only=True):
    ClientId: str
    ClientKey: str
    SignUpId: str


class PendingReason(msgspec.Struct, kw_only=True):
    PendingField: str
    Reasons: list[str] = []


class SignUpStatusResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    ClientKey: str
    OnboardingState: str  # open: Waiting, InProgress, Pending, Approved, Rejected, ClientOnboarded
    ClientId: str | None = None
    Message: str | None = None
    OnboardingSubState: str | None = None  # ManualHandling
    PendingReasons: list[PendingReason] = []

    @property
    def modifiedOn(self) -> None:
        return None  # no timestamp: the lifecycle orders the states

    @property
    def externalId(self) -> None:
        return None


class ValuePair(msgspec.Struct, kw_only=True):
    Key: str
    Value: str | None = None
    ParentKey: str | None = None


class SignUpOption(msgspec.Struct, kw_only=True):
    PropertyName: str
    ValuePairs: list[ValuePair] = []
    ParentPropertyName: str | None = None


class SignUpOptionList(msgspec.Struct, kw_only=True):
    Data: list[SignUpOption] = []


DocumentType = (
    str  # SignupFlowDocumentType, kept open (the spec's list is in SIGNUP_DOCUMENT_TYPES)
)
SIGNUP_DOCUMENT_TYPES = frozenset(
    {
        "AccountViewToIb", "EsaContract", "FeePaymentAuthorization", "GeneralBusinessTerms",
        "PensionTransferRequest", "PowerOfAttorney", "PowerOfAttorneyToIb", "ProofOfIdentity",
        "ProofOfResidency", "SourceOfFundsDocument", "TaxSavingAccount",
        "TaxSavingAccountWithTransfer", "TermsAndConditions",
        "TermsAndConditionsAldersopsparingPrivate", "TermsAndConditionsKapitalPensionPrivate",
        "TermsAndConditionsRatePensionPrivate",
    }
)  # fmt: skip


class Attachment(msgspec.Struct, kw_only=True, omit_defaults=True):
    Data: Annotated[str, Sensitive]  # base64 document content
    FileName: str
    DocumentType: DocumentType | None = None
    Title: str | None = None
    RenewalDate: date | None = None


class AttachmentsRequest(msgspec.Struct, kw_only=True):
    Documents: list[Attachment]


# Waiting → InProgress → Pending | Approved → ClientOnboarded; Rejected. A Pending
# application goes back to InProgress once the missing information arrives.
SIGNUP_LIFECYCLE = Lifecycle(
    "Waiting",
    {
        "Waiting": ("InProgress", "Pending", "Approved", "Rejected"),
        "InProgress": ("Pending", "Approved", "Rejected"),
        "Pending": ("Approved", "Rejected"),
        "Approved": ("ClientOnboarded",),
    },
)
