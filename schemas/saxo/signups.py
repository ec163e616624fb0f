"""Client signups (cm.yaml, Services.ClientManagement): the whole client in one POST.

The request Structs follow the spec's SignUpRequest field for field (names, required,
enums): tests/test_saxo_structs.py walks each against Saxo's published schema. They forbid
unknown fields, so a misspelled field is refused by name before anything is sent, and every
documented field a caller gives reaches Saxo. Personal data is marked Sensitive. Field names
as in the spec: `SignUpId` (not SignupId), `OnboardingSubState`, `CountryOfResidenceCode`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

from schemas.lifecycle import Lifecycle
from schemas.sensitive import Sensitive

Private = Annotated[str, Sensitive]
Option = str  # a value from GET /cm/v2/signups/options (checked against them before sending)


class Request(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A body partnersync sends: every field Saxo documents, nothing else."""


# -- PersonalInformation ---------------------------------------------------------------------


class OnboardingAddress(Request, kw_only=True):  # Models.OnboardingAddress
    StreetName: Private
    City: Private
    PostalCode: Private
    CountryOfResidenceCode: Option
    BuildingName: Private | None = None
    BuildingNumber: Private | None = None
    State: str | None = None


class PhoneNumber(Request, kw_only=True):  # Models.Api.v1.PhoneNumber
    CountryCode: str | None = None
    Number: Private | None = None


class ContactInformation(Request, kw_only=True):  # Models.ContactInformation
    EmailAddress: Private
    PrimaryPhoneNumber: PhoneNumber | None = None
    SecondaryPhoneNumber: PhoneNumber | None = None


class TaxableCountry(Request, kw_only=True):  # Models.TaxableCountry
    CountryCode: str | None = None
    TaxId: Private | None = None
    TinMissingReason: str | None = None
    TinNotAvailable: bool | None = None
    TinOtherMissingReason: str | None = None


class Money(Request, kw_only=True):
    Currency: str | None = None
    Value: float | None = None


class AdditionalEmploymentRelations(Request, kw_only=True):  # Models.AdditionalEmploymentRelations
    CompanyNameInsider: str | None = None
    CompanyNameMajorityInterest: str | None = None
    ManagedOrManagingAssets: bool | None = None


class EmploymentInformation(Request, kw_only=True):  # Models.EmploymentInformation
    AdditionalEmploymentRelations: AdditionalEmploymentRelations | None = None
    EmployerName: str | None = None
    FinancialSectorEmployee: bool | None = None
    NatureOfBusiness: Option | None = None
    OccupationTypes: list[Option] | None = None
    Position: str | None = None


class PersonalTradingProfile(Request, kw_only=True):
    KnowledgeOfFinancialInstruments: Option | None = None
    ProductTradingExperience: list[Option] | None = None
    TradesPerMonth: Option | None = None


class PoliticallyExposedInformation(Request, kw_only=True):  # Models.PoliticallyExposedInformation
    PepPosition: str | None = None
    PepRelatedPersonName: Private | None = None
    PepRelatedPersonPosition: str | None = None
    PepType: Option | None = None
    RelationToPep: Option | None = None


class PersonalInformation(Request, kw_only=True):  # Models.PersonalInformation
    FirstName: Annotated[str, msgspec.Meta(min_length=1, max_length=100), Sensitive]
    LastName: Annotated[str, msgspec.Meta(min_length=1, max_length=100), Sensitive]
    ContactInformation: ContactInformation
    ResidentialAddress: OnboardingAddress
    ServiceLanguageCode: Option
    DateOfBirth: Annotated[date, Sensitive] | None = None
    AdditionalTaxCountryCode: str | None = None
    AdditionalTaxableCountries: list[TaxableCountry] | None = None
    CityOfBirth: Private | None = None
    ConsentSource: int | None = None
    CorrespondenceAddress: OnboardingAddress | None = None
    CountryOfBirth: Option | None = None
    Debt: Money | None = None
    DeclaredBankrupt: bool | None = None
    EmploymentInformation: EmploymentInformation | None = None
    Gender: Option | None = None
    LiquidNetWorth: Money | None = None
    MarketingConsent: bool | None = None
    NationalId: Private | None = None
    NationalityCode: Option | None = None
    NonDisclosureClient: bool | None = None
    OriginalScriptFirstName: Private | None = None
    OriginalScriptLastName: Private | None = None
    PersonalId: Private | None = None
    PersonalIdExpirationDate: Private | None = None
    PersonalIdPlaceOfRelease: Private | None = None
    PersonalIdReleaseDate: Private | None = None
    PersonalIdReleasedBy: Private | None = None
    PersonalIdType: Option | None = None
    PersonalTradingProfile: PersonalTradingProfile | None = None
    PoliticallyExposedInformation: PoliticallyExposedInformation | None = None
    PoliticallyExposedPerson: bool | None = None
    SalaryBeforeTax: Money | None = None
    TaxId: Private | None = None
    TinMissingReason: str | None = None
    TinNotAvailable: bool | None = None
    TinOtherMissingReason: str | None = None


# -- the other sections ----------------------------------------------------------------------


class AccountInformation(Request, kw_only=True):
    """The account configuration agreed with the Saxo account manager."""

    AdditionalChoiceOfAccounts: list[str] | None = None
    ClientCategoryId: str | None = None
    CurrencyCode: Option | None = None
    DefaultChoiceOfAccount: str | None = None
    IntendedCommissionGroupId: str | None = None
    IntendedTemplateId: str | None = None
    ModelId: str | None = None
    OtherInstructions: str | None = None


class BankInformation(Request, kw_only=True):  # Models.BankInformation
    BeneficiaryBankName: str | None = None
    ReceivingCountryIsoCode: str | None = None


class FinlandData(Request, kw_only=True):
    EuroclearJudicialForm: str | None = None
    EuroclearSectorCode: str | None = None


class AssetDetails(Request, kw_only=True):  # Models.AssetDetails
    Amount: int
    AmountDescription: Literal["AboveThisAmount", "Exact", "Rounded"]
    CurrencyCode: str


class GlobalFinancialInformation(Request, kw_only=True):
    AnnualIncomeAfterTax: AssetDetails | None = None
    IntendToInvest: AssetDetails | None = None
    InvestableAsset: AssetDetails | None = None


class ItalyEmploymentInformation(Request, kw_only=True):  # ItalianData.EmploymentInformation
    CountryConcernedCode: str | None = None
    DetailedBusinessActivity: str | None = None
    EmploymentName: str | None = None
    OtherEmployment: str | None = None
    PrevalentCorporateObject: str | None = None
    ProvinceConcerned: str | None = None
    StatusOfEmployment: str | None = None


class ItalyAnnualIncomeInformation(Request, kw_only=True):  # ItalianData.AnnualIncomeInformation
    AnnualIncomeSource: list[str] | None = None
    TotalAnnualIncome: str | None = None


class ItalyInvestableAssets(Request, kw_only=True):  # ItalianData.InvestableAssets
    IntendToInvest: str | None = None
    NatureAndPurposeOfTheRelationship: str | None = None
    SourceOfWealth: list[str] | None = None
    ValueOfTotalWealth: str | None = None


class ItalyProfileInformation(Request, kw_only=True):  # ItalianData.ProfileInformation
    AnnualIncomeInformation: ItalyAnnualIncomeInformation | None = None
    InvestableAssets: ItalyInvestableAssets | None = None


class ItalyData(Request, kw_only=True):  # ItalianData.ItalyData
    EmploymentInformation: ItalyEmploymentInformation | None = None
    MailContactPreference: bool | None = None
    ProfileInformation: ItalyProfileInformation | None = None


class ElectronicVerification(Request, kw_only=True):
    Done: str | None = None
    ExternalId: str | None = None
    Result: Literal["Failed", "Passed", "Referred", "Unknown"] | None = None
    Score: str | None = None


class OnboardingInformation(Request, kw_only=True):
    ElectronicVerification: ElectronicVerification | None = None


class PensionData(Request, kw_only=True):  # Models.PensionData
    AdditionalPensionData: str | None = None
    EmployerReference: str | None = None
    PensionProductTypes: list[str] | None = None  # Models.PensionProductType, kept open


class AnnualIncomeInformation(Request, kw_only=True):  # Models.AnnualIncomeInformation
    AnnualSalaryAfterTax: Option | None = None
    SecondaryIncomeOther: str | None = None
    SecondarySourcesOfIncome: list[Option] | None = None
    SecondarySourcesOfIncomeTotal: Option | None = None


class InvestableAssets(Request, kw_only=True):  # Models.InvestableAssets
    IntendToInvest: Option | None = None
    PrimarySourcesOfWealth: list[Option] | None = None
    SourceOfWealthOther: str | None = None
    ValueOfCashAndSecurities: Option | None = None


class InvestmentPurpose(Request, kw_only=True):
    PurposeAndScope: Option | None = None


class TradingProfile(Request, kw_only=True):  # Models.TradingProfile
    SoleBoOfAssets: bool | None = None


class ProfileInformation(Request, kw_only=True):  # Models.ProfileInformation
    AnnualIncomeInformation: AnnualIncomeInformation | None = None
    InvestableAssets: InvestableAssets | None = None
    InvestmentPurpose: InvestmentPurpose | None = None
    TradingProfile: TradingProfile | None = None


class FatcaDeclaration(Request, kw_only=True):  # Models.FatcaDeclaration
    UnitedStatesCitizen: bool | None = None
    UnitedStatesProducts: bool | None = None
    UnitedStatesTaxId: Private | None = None
    UnitedStatesTaxLiable: bool | None = None


class RegulatoryInformation(Request, kw_only=True):  # Models.RegulatoryInformation
    FatcaDeclaration: FatcaDeclaration | None = None


class SingaporeData(Request, kw_only=True):  # Models.SingaporeData
    AnnualIncomeSgd: str | None = None
    BrokersDeclinedBy: str | None = None
    ClassificationRequired: bool | None = None
    DiplomaOrHigherQualification: str | None = None
    ELearningAbsSasCfds: str | None = None
    ELearningAbsSasFx: str | None = None
    ELearningPassed: str | None = None
    ELearningSgx: bool | None = None
    ELearningSgxScore: str | None = None
    EducationalQualificationSatisfied: bool | None = None
    FinanceWorkExperience: str | None = None
    InvestorProfile: str | None = None
    ListedSips: bool | None = None
    NetWorthSgd: str | None = None
    PermanentResident: bool | None = None
    ProfessionalFinanceQualification: str | None = None
    SgxStocks: str | None = None
    UnlistedSipsCfds: bool | None = None
    UnlistedSipsFx: bool | None = None


class SwitzerlandData(Request, kw_only=True):  # Models.SwitzerlandData
    AnnualIncomeChf: str | None = None
    NetWorthChf: str | None = None


class SignUpRequest(Request, kw_only=True):
    """POST /cm/v1/signups. The country sections (Finland, Italy, Singapore, Switzerland)
    cannot be combined (the spec's description)."""

    PersonalInformation: PersonalInformation
    RegulatoryInformation: RegulatoryInformation
    AccountInformation: AccountInformation | None = None
    BankInformation: BankInformation | None = None
    FinlandData: FinlandData | None = None
    GlobalFinancialInformation: GlobalFinancialInformation | None = None
    ItalyData: ItalyData | None = None
    OnboardingInformation: OnboardingInformation | None = None
    PensionData: PensionData | None = None
    ProfileInformation: ProfileInformation | None = None
    SingaporeData: SingaporeData | None = None
    SwitzerlandData: SwitzerlandData | None = None

    def __post_init__(self) -> None:
        countries = [
            n for n in ("FinlandData", "ItalyData", "SingaporeData", "SwitzerlandData")
            if getattr(self, n) is not None
        ]  # fmt: skip
        if len(countries) > 1:
            raise ValueError(f"country sections cannot be combined: {', '.join(countries)}")


# -- responses (lenient: a field Saxo adds later must not break the poller) --------------------


class SignUpResponse(msgspec.Struct, kw_only=True):
    ClientId: str
    ClientKey: str
    SignUpId: str


class PendingReason(msgspec.Struct, kw_only=True):  # OnboardingStatePendingReason
    PendingField: str
    Reasons: list[str] = []


class SignUpStatusResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    ClientKey: str
    OnboardingState: str  # OnboardingStateType, kept open
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


class ValuePair(msgspec.Struct, kw_only=True):  # StringStringKeyValuePair
    Key: str
    Value: str | None = None


class SignUpOption(msgspec.Struct, kw_only=True):  # Models.SignUpOption
    PropertyName: str
    ValuePairs: list[ValuePair] = []


class SignUpOptionList(msgspec.Struct, kw_only=True):  # Models.SignUpOptionListResult
    Data: list[SignUpOption] = []
    next_: str | None = msgspec.field(default=None, name="__next")


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


class Attachment(Request, kw_only=True):  # Models.SignupDocument
    Data: Annotated[str, Sensitive]  # base64 document content
    FileName: str
    DocumentType: str | None = None  # Models.SignupFlowDocumentType (SIGNUP_DOCUMENT_TYPES)
    Title: str | None = None
    RenewalDate: date | None = None


class AttachmentsRequest(Request, kw_only=True):  # SignupDocuments
    Documents: list[Attachment]


class CompleteAccountDetails(msgspec.Struct, kw_only=True):  # CompleteApplication.AccountDetails
    AccountType: str | None = None
    CurrencyIsoCode: str | None = None
    Iban: Private | None = None


class CompleteApplicationResponse(msgspec.Struct, kw_only=True):
    """PUT /cm/v1/signups/completeapplication/{SignUpId}: ApplicationStatus Ok | InProgress
    | Failed ("Failed to complete application. Please reach out to Saxo Bank"), with
    ErrorMessage when Failed and AccountDetails when Ok (cm.yaml)."""

    ApplicationStatus: str | None = None  # kept open: a value Saxo adds later is shown as is
    ErrorMessage: str | None = None
    AccountDetails: list[CompleteAccountDetails] = []


# Waiting → InProgress → Pending | Approved | Rejected; Approved → ClientOnboarded
# (saxo-client-signups, "Onboarding status"). Pending: "the introducing broker should take
# some action to correct the problem"; once it has, the application is processed again,
# InProgress [inferred: the seed names no state after Pending].
SIGNUP_LIFECYCLE = Lifecycle(
    "Waiting",
    {
        "Waiting": ("InProgress", "Pending", "Approved", "Rejected"),
        "InProgress": ("Pending", "Approved", "Rejected"),
        "Pending": ("InProgress", "Approved", "Rejected"),
        "Approved": ("ClientOnboarded",),
    },
)
