# ruff: noqa: E501  (recorded answers: a base64 record and a policy reason read better unbroken)
"""Example answers for the OpenAPI document: what a real server answered over a small seeded ledger
(two tenants, a data collection and consents), so they show the real shapes; key texts are shortened."""

from typing import Any

Responses = dict[int | str, dict[str, Any]]


def answer(example: Any, status: int = 200) -> Responses:
    """The `responses` entry of a route answering JSON like `example`."""
    schema = (
        {"type": "array", "items": {"type": "object"}} if isinstance(example, list) else {"type": "object"}
    )
    return {status: {"content": {"application/json": {"schema": schema, "example": example}}}}


# A holding as both the subject view and the export show it (each adds its own retention fields).
_HOLDING: dict[str, Any] = {
    "category": "account_contact",
    "system": "crm",
    "legal_basis": "contract",
    "purposes": ["service"],
    "role": None,
    "jurisdiction": None,
    "first_collected": "2026-01-01T00:01:00Z",
    "last_collected": "2026-01-01T00:01:00Z",
    "status": "held",
}

SUBJECT: Any = {
    "tenant": "acme",
    "subject": "alice",
    "erased": False,
    "erased_at": None,
    "first_seen": "2026-01-01T00:01:00Z",
    "last_event_at": "2026-01-01T00:02:00Z",
    "account_closed_at": None,
    "holdings": [
        {
            **_HOLDING,
            "retention_expires_at": "2028-01-01T00:02:00Z",
            "retention_rule": "account-data",
            "retention_status": "scheduled",
            "retention_note": "P2Y after last_activity",
            "purge_ordered_at": None,
            "purge_overdue": None,
        }
    ],
    "consent": [
        {
            "purpose": "marketing",
            "channel": "sms",
            "state": "granted",
            "since": "2026-01-01T00:02:00Z",
            "event_id": "a2",
        }
    ],
    "shares": [],
    "deletion_requests": [],
    "legal_holds": [],
    "violations": [],
    "recipients_unconfirmed": [],
}
HISTORY: Any = [
    {
        "version": 2,
        "type": "data.collected",
        "event_id": "a1",
        "occurred_at": "2026-01-01T00:01:00Z",
        "recorded_at": "2026-11-26T04:07:59.030761Z",
        "source": "urn:service:test",
        "data": {
            "category": "account_contact",
            "system": "crm",
            "legal_basis": "contract",
            "purposes": ["service"],
        },
        "personal": {"personal_data": {"phone": "+15550001111"}},
        "origin": "events/0/0",
    },
    {
        "version": 3,
        "type": "consent.given",
        "event_id": "a2",
        "occurred_at": "2026-01-01T00:02:00Z",
        "recorded_at": "2026-11-26T04:07:59.030761Z",
        "source": "urn:service:test",
        "data": {"purpose": "marketing", "channel": "sms", "method": "web_form"},
        "personal": {},
        "origin": "events/0/0",
    },
]
EXPORT: Any = {
    "format": "urn:consent-ledger:export:v1",
    "generated_at": "2026-11-26T04:07:59.876250Z",
    "controller": "acme",
    "subject": "alice",
    "holdings": [
        {
            **_HOLDING,
            "retention": {
                "status": "scheduled",
                "expires_at": "2028-01-01T00:02:00Z",
                "rule": "account-data",
                "note": "P2Y after last_activity",
            },
        }
    ],
    "personal_data": [
        {
            "category": "account_contact",
            "system": "crm",
            "collected_at": "2026-01-01T00:01:00Z",
            "source": None,
            "values": {"personal_data": {"phone": "+15550001111"}},
        }
    ],
    "recipients": [],
    "recipients_unconfirmed": [],
    "consent_history": [
        {
            "event_id": "a2",
            "type": "consent.given",
            "time": "2026-01-01T00:02:00Z",
            "source": "urn:service:test",
            "purpose": "marketing",
            "channel": "sms",
            "method": "web_form",
        }
    ],
    "current_consent": [
        {
            "purpose": "marketing",
            "channel": "sms",
            "state": "granted",
            "since": "2026-01-01T00:02:00Z",
            "event_id": "a2",
        }
    ],
    "rights_requests": [],
    "legal_holds": [],
}
RECEIPT: Any = {
    "format": "urn:consent-ledger:receipt:v2",
    "receipt_id": "158887b7-7a3a-591b-a2a5-390bafcf804c",
    "record_id": "a2",
    "event_type": "consent.given",
    "controller": "acme",
    "subject_id": "alice",
    "event_time": "2026-01-01T00:02:00Z",
    "recorded_at": "2026-11-26T04:07:59.030761Z",
    "purposes": ["marketing"],
    "channel": "sms",
    "state": "granted",
    "notice_version": None,
    "collection_method": "web_form",
    "jurisdiction": None,
    "source": "urn:service:test",
    "position": 3,
    "version": 3,
    "record_hash": "cf66e6883f0bf093c867cf2fe6e943be041c87b3bfef8043ecd482d4afe70698",
    "previous_hash": "3a044b4467bd4373eea9bd1c83e474456ca3f6f66ca71b6c60c2cfc25c796c95",
    "record": {
        "originator_id": "ee450ff1-e40a-5c50-b2e6-e1fff7ddccf2",
        "version": 3,
        "topic": "ledger.subject:Subject.ConsentGiven",
        "state": "eyJ0aW1lc3RhbXAiOnsiX3R5cGVfIjoiZGF0ZXRpbWVfaXNvIiwiX2RhdGFfIjoiMjAyNi0xMS0yNlQwNDowNzo1OS4wMzA3NjErMDA6MDAifSwidGVuYW50IjoiYWNtZSIsInN1YmplY3QiOiJhbGljZSIsImV2ZW50X2lkIjoiYTIiLCJzb3VyY2UiOiJ1cm46c2VydmljZTp0ZXN0Iiwib2NjdXJyZWRfYXQiOnsiX3R5cGVfIjoiZGF0ZXRpbWVfaXNvIiwiX2RhdGFfIjoiMjAyNi0wMS0wMVQwMDowMjowMCswMDowMCJ9LCJzY2hlbWFfdmVyc2lvbiI6MSwiZGF0YSI6eyJwdXJwb3NlIjoibWFya2V0aW5nIiwiY2hhbm5lbCI6InNtcyIsIm1ldGhvZCI6IndlYl9mb3JtIn0sInNlYWxlZCI6IkMyUlkxUFpPY1VvajdUSDF3RjJGS1M5akRsWjl4MFd4allvT2RxbXoiLCJrZXlfaWQiOiIzMWZmNDYxZS04ZmM0LTQ0ZjEtOGFhOC02NGM4NTc5NDQ1MjkiLCJvcmlnaW4iOiJldmVudHMvMC8wIiwicHJldmlvdXNfaGFzaCI6IjNhMDQ0YjQ0NjdiZDQzNzNlZWE5YmQxYzgzZTQ3NDQ1NmNhM2Y2ZjY2Y2E3MWI2YzYwYzJjZmMyNWM3OTZjOTUifQ==",
    },
    "proof": {
        "leaf_index": 2,
        "tree_size": 8,
        "inclusion_path": [
            "52df935046dbe20ae5dd89dda1334c2846e4684826b3dc3047a42e0d553fac83",
            "52cf4d46954559093ff35400f0a6a2aeab9296cf935c00fa322c92cdddb708fb",
            "e232a25fd1ed4466b42771fd424b117318dfa5ae6359185bb499d924ae57028e",
        ],
        "tree_head": {
            "format": "urn:consent-ledger:tree-head:v1",
            "key_id": "45e514f990f3e1ef",
            "position": 8,
            "previous": "0000000000000000000000000000000000000000000000000000000000000000",
            "root_hash": "a2e3a9f609fcacd74f15c687ab3907c7f62b92e77614fa72d56f913ad1249d06",
            "sequence": 1,
            "timestamp": 1795666079086,
            "tree_size": 8,
            "signature": "7f34f3ad14b3a8d1e6246d1e47514ef849d3e0a9fa7f3cccb28d801aa0d60acee1a3b6cec40160bd56a42e181d7e4ec00c0c1d5587abf0c72c3ff4d7c68c9a07",
        },
        "key_id": "45e514f990f3e1ef",
    },
}
BREACH: Any = {
    "tenant": "acme",
    "systems": ["crm"],
    "categories": None,
    "window_from": "2026-01-01T00:00:00Z",
    "window_to": "2026-12-31T00:00:00Z",
    "discovered_at": "2026-11-26T04:07:59.971029Z",
    "subjects": 1,
    "by_jurisdiction": {"unknown": {"subjects": 1, "categories": {"account_contact": 1}}},
    "by_category": {"account_contact": 1},
    "deadlines": [
        {
            "jurisdiction": "unknown",
            "regime": "unknown jurisdiction",
            "notify": "assess with counsel",
            "deadline": "2026-11-29T04:07:59.971029Z",
            "subjects": 1,
        }
    ],
    "affected": None,
}
OVERDUE: Any = {"requests": [], "purge_orders": []}
PURGES: Any = [
    {
        "tenant": "acme",
        "subject": "alice",
        "system": "crm",
        "category": "account_contact",
        "rule": "account-data",
        "expires_at": "2028-01-01T00:02:00Z",
        "purge_ordered_at": None,
        "purge_overdue": None,
    }
]
TENANT_STATS: Any = {
    "tenants": {"acme": {"events": 4, "subjects": 2}},
    "sweeps": 3,
    "last_sweep": {"at": "2026-11-26T06:00:00Z", "finished_at": "2026-11-26T06:00:01.204518Z", "ordered": 0},
    "last_sweep_ordered": {
        "at": "2026-11-26T04:00:00Z",
        "finished_at": "2026-11-26T04:00:01.870112Z",
        "ordered": 2,
    },
}
ACCESS_LOG: Any = [
    {
        "at": "2026-11-26T04:07:59.802060Z",
        "key_id": "11cb2a02802f",
        "role": "admin",
        "tenant": "acme",
        "subject": "alice",
        "endpoint": "history",
    },
    {
        "at": "2026-11-26T04:07:59.836041Z",
        "key_id": "11cb2a02802f",
        "role": "admin",
        "tenant": "acme",
        "subject": "alice",
        "endpoint": "export",
    },
]
POLICIES: Any = [
    {
        "adopted_at": "2026-11-26T04:07:59.247459Z",
        "adopted_by": "dpo@acme.example",
        "reason": "first policy",
        "digest": "f83c2c007f2f358bcc6590b12b73b04dfd5c94a19e32ae443689653866be31e4",
        "changes": {
            "added": [
                "account-data",
                "billing-records",
                "children",
                "content",
                "cookies",
                "integration",
                "marketing-consent-withdrawn",
                "marketing-preferences",
                "support",
                "telecom-records",
                "usage-metadata",
            ],
            "removed": [],
            "changed": [],
        },
        "rules": [
            "telecom-records",
            "billing-records",
            "account-data",
            "content",
            "usage-metadata",
            "marketing-preferences",
            "marketing-consent-withdrawn",
            "cookies",
            "support",
            "integration",
            "children",
        ],
    }
]
STATS: Any = {
    "tenants": {"acme": {"events": 4, "subjects": 2}, "globex": {"events": 1, "subjects": 1}},
    "sweeps": 3,
    "last_sweep": {
        "at": "2026-11-26T06:00:00Z",
        "finished_at": "2026-11-26T06:00:01.204518Z",
        "ordered": 0,
        "orders": {},
        "failed": 0,
    },
    "last_sweep_ordered": {
        "at": "2026-11-26T04:00:00Z",
        "finished_at": "2026-11-26T04:00:01.870112Z",
        "ordered": 3,
        "orders": {"acme": 2, "globex": 1},
        "failed": 0,
    },
}
VERIFY: Any = {
    "events": 10,
    "subjects": 4,
    "last_checkpoint": 1,
    "tree_size": 8,
    "witnessed": None,
    "breaks": [],
    "ok": True,
}
KEYS: Any = [
    {
        "key_id": "11cb2a02802f",
        "tenant": None,
        "role": "admin",
        "created_at": "2026-11-26T04:07:59.257519Z",
        "revoked_at": None,
    }
]
NEW_KEY: Any = {
    "key_id": "00fb06128158",
    "tenant": "acme",
    "role": "checker",
    "created_at": "2026-11-26T04:08:00.199631Z",
    "revoked_at": None,
    "key": "clk_00fb06128158_aPob8...",
}
REVOKED_KEY: Any = {
    "key_id": "00fb06128158",
    "tenant": "acme",
    "role": "checker",
    "created_at": "2026-11-26T04:08:00.199631Z",
    "revoked_at": "2026-11-26T04:08:00.220577Z",
}
BULK: Any = {
    "purpose": "marketing",
    "channel": "sms",
    "allowed": ["alice"],
    "denied": [
        {
            "subject": "bob",
            "reason": "consent for marketing on sms is withdrawn since 2026-01-01T00:05:00Z",
            "event_id": "b2",
        },
        {
            "subject": "nobody",
            "reason": "unknown subject: the tenant has no subject with this id",
            "event_id": None,
        },
    ],
}
EVENTS_ACCEPTED: Any = {"accepted": ["evt-1", "evt-2"]}
VIOLATIONS: Any = {
    "tenant": "acme",
    "from": "1970-01-01T00:00:00Z",
    "to": "2026-11-26T04:15:37Z",
    "counts": {
        "contact_not_allowed": 0,
        "contact_late_opt_out": 0,
        "opt_out_obeyed_late": 0,
        "collected_after_erasure": 0,
        "purge_unconfirmed": 0,
        "held_past_expiry": 0,
        "request_answered_late": 0,
        "undeclared_recipient": 0,
    },
    "notes": ["no declaration recorded for acme: recipients not judged (see `declare`)"],
    "violations": [],
    "opt_outs_followed_by_contacts": [],
}
ROPA: Any = {
    "tenant": "acme",
    "from": "1970-01-01T00:00:00Z",
    "to": "2026-11-26T04:15:38Z",
    "controller": None,
    "vocabularies": {
        "dpv": {
            "dpv": "https://w3id.org/dpv#",
            "pd": "https://w3id.org/dpv/pd#",
            "eu-gdpr": "https://w3id.org/dpv/legal/eu/gdpr#",
        },
        "fides": "fideslang default taxonomy",
    },
    "purposes": [
        {
            "purpose": "service",
            "dpv": "dpv:ServiceProvision",
            "fides_data_use": "essential.service",
            "subjects": 1,
            "holdings": 1,
            "categories": [
                {
                    "category": "account_contact",
                    "dpv": "pd:Contact",
                    "fides": ["user.contact", "user.name", "user.account"],
                    "subjects": 1,
                    "holdings": 1,
                }
            ],
            "data_subjects": [
                {
                    "kind": "contact",
                    "role": "unknown",
                    "dpv": "dpv:Customer",
                    "fides": "customer",
                    "subjects": 1,
                    "holdings": 1,
                }
            ],
            "legal_bases": [
                {
                    "legal_basis": "contract",
                    "dpv": "dpv:Contract",
                    "fides": "Contract",
                    "subjects": 1,
                    "holdings": 1,
                }
            ],
            "systems": [{"system": "crm", "subjects": 1, "holdings": 1}],
            "recipients": [],
            "retention": [
                {
                    "rule": "account-data",
                    "category": "account_contact",
                    "duration": "P2Y",
                    "trigger": "last_activity",
                    "legal_basis": None,
                    "jurisdiction": None,
                    "description": "Account and contact data: as long as the account is active, and a reasonable period after.",
                }
            ],
            "contacts": [],
        }
    ],
}
# Drift as a declaration that names neither the recipient nor the category would give (the seed declares nothing).
DRIFT: Any = {
    "tenant": "acme",
    "declared_at": "2026-02-01T09:00:00Z",
    "declared_by": "dpo@acme.example",
    "digest": "5d41402abc4b2a76b9719d911017c592ae0f1e2d3c4b5a69788796a5b4c3d2e1",
    "counts": {
        "undeclared_recipient": 1,
        "recipient_country": 0,
        "transfer_mechanism": 0,
        "undeclared_purpose": 0,
        "undeclared_category": 1,
        "legal_basis": 0,
        "kept_past_declared": 0,
        "no_declared_retention": 0,
    },
    "drift": [
        {
            "kind": "undeclared_recipient",
            "what": "adtech.example",
            "detail": "shared with, not declared",
            "facts": 3,
            "subjects": 2,
            "example_event": "s-17",
        },
        {
            "kind": "undeclared_category",
            "what": "account_contact for service",
            "detail": "held, not declared for this purpose",
            "facts": 1,
            "subjects": 1,
            "example_event": "a1",
        },
    ],
}
DEADLETTER: Any = {
    "id": 1,
    "topic": "ledger.events",
    "partition": 0,
    "offset": 0,
    "tenant": None,
    "reason_class": "json",
    "reason": "not valid JSON: unexpected end of data at line 1 column 30",
    "received_at": "2026-11-26T04:42:48.053593Z",
    "value_bytes": 29,
    "cut": False,
    "sealed": True,
    "status": "open",
    "replay": None,
    "event_id": None,
    "dropped_at": None,
    "dropped_why": None,
    "origin": "ledger.events/0/0",
}
DEADLETTERS: Any = {
    "counts": {
        "json": {"open": 1, "replayed": 0, "dropped": 0},
        "vocabulary": {"open": 1, "replayed": 0, "dropped": 0},
    },
    "letters": [
        DEADLETTER,
        {
            "id": 2,
            "topic": "ledger.events",
            "partition": 0,
            "offset": 1,
            "tenant": "acme",
            "reason_class": "vocabulary",
            "reason": "schema violation at consent.given v1: data.channel: value is not in the closed vocabulary (see schemas/vocabulary.v1.json)",
            "received_at": "2026-11-26T04:42:48.053593Z",
            "value_bytes": 215,
            "cut": False,
            "sealed": True,
            "status": "open",
            "replay": None,
            "event_id": None,
            "dropped_at": None,
            "dropped_why": None,
            "origin": "ledger.events/0/1",
        },
    ],
}
REPLAY: Any = {
    "replay": 1,
    "tried": 1,
    "stored": [],
    "refused": [
        {
            "id": 2,
            "reason": "schema violation at consent.given v1: data.channel: value is not in the closed vocabulary (see schemas/vocabulary.v1.json)",
        }
    ],
}
DROPPED: Any = {
    "id": 1,
    "topic": "ledger.events",
    "partition": 0,
    "offset": 0,
    "tenant": None,
    "reason_class": "json",
    "reason": "not valid JSON: unexpected end of data at line 1 column 30",
    "received_at": "2026-11-26T04:42:48.053593Z",
    "value_bytes": 29,
    "cut": False,
    "sealed": False,
    "status": "dropped",
    "replay": None,
    "event_id": None,
    "dropped_at": "2026-11-26T04:42:49.300327Z",
    "dropped_why": "a truncated test message from the CRM's staging feed",
    "origin": "ledger.events/0/0",
}
