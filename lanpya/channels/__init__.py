"""Channels: Twilio SMS and Viber, out (senders, rate limits, error
classification, :func:`dispatch_due`) and the status bookkeeping the webhooks
and the spool replay share (:mod:`lanpya.channels.status`)."""

from lanpya.channels.dispatch import dispatch_due, recover_abandoned, sender_for
from lanpya.channels.errors import PERMANENT, TRANSIENT, ProviderError, SendOutcome
from lanpya.channels.twilio_sender import TwilioSender
from lanpya.channels.viber_sender import ViberSender

__all__ = [
    "PERMANENT",
    "TRANSIENT",
    "ProviderError",
    "SendOutcome",
    "TwilioSender",
    "ViberSender",
    "dispatch_due",
    "recover_abandoned",
    "sender_for",
]
