"""All tables. Import models from here; each domain has its own module."""

from lanpya.models.base import Base, random_id, utcnow
from lanpya.models.campaigns import Audience, Campaign, CampaignFire, CampaignMessage
from lanpya.models.cases import Alert, AuditLog, Case, CaseNote, Shift, Staff
from lanpya.models.contacts import Contact
from lanpya.models.messages import Inbound, Outbox
from lanpya.models.system import Heartbeat, Lease, RateBucket

__all__ = [
    "Alert",
    "Audience",
    "AuditLog",
    "Base",
    "Campaign",
    "CampaignFire",
    "CampaignMessage",
    "Case",
    "CaseNote",
    "Contact",
    "Heartbeat",
    "Inbound",
    "Lease",
    "Outbox",
    "RateBucket",
    "Shift",
    "Staff",
    "random_id",
    "utcnow",
]
