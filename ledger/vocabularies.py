"""The closed vocabulary in shared words: the Fides taxonomy (fideslang) and the W3C Data Privacy
Vocabulary (DPV 2.x; prefixes below), so a record of processing or a receipt reads in terms other
tools know. Every value of `schemas/vocabulary.v1.json` has an entry (a test holds it to that)."""

DPV_PREFIXES = {
    "dpv": "https://w3id.org/dpv#",
    "pd": "https://w3id.org/dpv/pd#",
    "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
}

# category -> Fides data categories (a category of ours spans several of theirs) and a DPV term.
FIDES_CATEGORIES = {
    "account_contact": ["user.contact", "user.name", "user.account"],
    "billing": ["user.payment", "user.financial"],
    "content": ["user.content.private"],
    "usage_metadata": ["user.behavior", "system.operations"],
    "visitor_data": ["user.device.cookie_id", "user.device.ip_address", "user.location.imprecise"],
    "integration_data": ["user.contact", "user.unique_id"],
    "support": ["user.content.private"],
    "marketing_preferences": ["user.privacy_preferences"],
    "special_category": ["user.health_and_medical", "user.demographic.race_ethnicity"],
    "children": ["user.childrens"],
}
DPV_CATEGORIES = {
    "account_contact": "pd:Contact",
    "billing": "pd:Financial",
    "content": "pd:Communication",
    "usage_metadata": "pd:CommunicationsMetadata",
    "visitor_data": "pd:DeviceBased",
    "integration_data": "pd:External",
    "support": "pd:Communication",
    "marketing_preferences": "pd:Preference",
    "special_category": "dpv:SpecialCategoryPersonalData",
    "children": "dpv:Child",
}
# purpose -> Fides data use, DPV purpose.
FIDES_USES = {
    "service": "essential.service",
    "support": "essential.service.operations.support",
    "billing": "essential.service.payment_processing",
    "security": "essential.service.security",
    "marketing": "marketing.communications",
    "analytics": "analytics.reporting",
    "product_improvement": "functional.service.improve",
    "advertising": "marketing.advertising",
    "legal_compliance": "essential.legal_obligation",
}
DPV_PURPOSES = {
    "service": "dpv:ServiceProvision",
    "support": "dpv:CustomerCare",
    "billing": "dpv:PaymentManagement",
    "security": "dpv:EnforceSecurity",
    "marketing": "dpv:DirectMarketing",
    "analytics": "dpv:ServiceUsageAnalytics",
    "product_improvement": "dpv:ImproveExistingProductsAndServices",
    "advertising": "dpv:Advertising",
    "legal_compliance": "dpv:LegalCompliance",
}
# legal basis -> Fides' GDPR Art. 6 wording (its LegalBasisForProcessingEnum), DPV legal basis.
FIDES_LEGAL_BASES = {
    "consent": "Consent",
    "contract": "Contract",
    "legal_obligation": "Legal obligations",
    "legitimate_interest": "Legitimate interests",
    "vital_interest": "Vital interests",
    "public_task": "Public interest",
}
DPV_LEGAL_BASES = {
    "consent": "dpv:Consent",
    "contract": "dpv:Contract",
    "legal_obligation": "dpv:LegalObligation",
    "legitimate_interest": "dpv:LegitimateInterest",
    "vital_interest": "dpv:VitalInterest",
    "public_task": "dpv:PublicInterest",
}
# data subjects (declarations) -> Fides data subject, DPV data subject.
FIDES_SUBJECTS = {
    "account_holder": "customer",
    "authorized_user": "employee",  # a customer's staff using its account
    "contact": "customer",  # the tenant's own customers and prospects
    "visitor": "visitor",
}
DPV_SUBJECTS = {
    "account_holder": "dpv:Customer",
    "authorized_user": "dpv:User",
    "contact": "dpv:Customer",
    "visitor": "dpv:Visitor",
}
# recipient type -> DPV entity; transfer mechanism -> GDPR term in DPV (None: no single term).
DPV_RECIPIENTS = {
    "subprocessor": "dpv:DataSubProcessor",
    "third_party": "dpv:ThirdParty",
    "affiliate": "dpv:Recipient",
    "authority": "dpv:Authority",
}
DPV_TRANSFERS: dict[str, str | None] = {
    "adequacy": "eu-gdpr:AdequacyDecision",
    "scc": "eu-gdpr:StandardContractualClauses",
    "bcr": "eu-gdpr:BindingCorporateRules",
    "consent": "eu-gdpr:A49-1-a",  # explicit consent to the transfer
    "derogation": None,  # Art. 49 has one term per ground; the event does not say which
    "none": None,
}
# consent state -> DPV consent status; a STOP is the subject withdrawing, as a withdrawal is.
DPV_CONSENT_STATES = {
    "granted": "dpv:ConsentGiven",
    "withdrawn": "dpv:ConsentWithdrawn",
    "opted_out": "dpv:ConsentWithdrawn",
}
# subject role of the platform -> the data subjects it implies, when no declaration says.
SUBJECTS_BY_ROLE = {"controller": "account_holder", "processor": "contact"}
