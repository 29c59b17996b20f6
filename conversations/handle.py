"""What happens to one claimed inbound message.

In this order (docs/interfaces.md, issue "Conversation engine"):

1. keywords (STOP, START, HELP, language, DELETE, JOIN): work even mid-form
   and during a hand-off;
2. the risk lexicon: a match opens a case (also while Rasa is down);
3. opted out: stored, not answered;
4. hand-off: the message goes to the case for the agent, not to Rasa;
5. abuse limits: per-sender throttle, new-number flood breaker;
6. Rasa, through the custom channel; its replies become outbox rows linked
   to the inbound message, in order.

No database transaction is open while Rasa is called. If Rasa (or its action
server) is down or slow, the message goes back to the queue with a backoff;
after ``holding_reply_after_s`` the contact gets one holding reply, and the
question is answered when Rasa returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from conversations import limits
from conversations.rasa import RasaClient, RasaRejected, RasaReplicas, RasaUnavailable
from conversations.services import Answers, module
from lanpya import clock, outbox
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import Case, Contact, Inbound, Lease, Outbox
from lanpya.text import next_language

logger = logging.getLogger(__name__)

#: retry delays while Rasa is away: 1, 2, 4, 8, then every 15 seconds
BACKOFF_CAP_S = 15
#: unexpected errors (not Rasa being away) are retried this often, then FAILED
MAX_ERRORS = 5
#: keywords the worker answers itself; others are passed to Rasa as intents
RASA_KEYWORD_INTENTS = {"delete": "/delete_data", "join": "/subscribe", "subscribe": "/subscribe"}
MEDIA_KINDS = ("media", "sticker", "location", "image", "video", "file", "contact")


#: intents that must always leave an open case behind
REPORT_INTENTS = ("report_concern", "emergency")
#: the conversation languages (lanpya.content.LANGUAGES; not imported: see services)
LANGUAGES = ("en", "my", "kac", "shn")
#: Answers.answer's own arguments: never taken from Rasa's variables
RENDER_ARGS = frozenset({"key", "language", "channel", "self"})


@cache
def _context_statement():
    """Built once (building a statement costs more than running it)."""
    contact_id, msg_id, since = bindparam("contact_id"), bindparam("msg_id"), bindparam("since")
    earlier = aliased(Inbound)
    handoff = (
        select(Case.id)
        .where(Case.contact_id == contact_id, Case.status.in_(Case.OPEN), Case.handoff.is_(True))
        .order_by(Case.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    recent = (
        select(func.count())
        .select_from(earlier)
        .where(earlier.contact_id == contact_id, earlier.id <= msg_id, earlier.received_at > since)
        .scalar_subquery()
    )
    breaker = select(Lease.expires_at).where(Lease.name == limits.BREAKER).scalar_subquery()
    previous = (
        select(earlier.id)
        .where(earlier.contact_id == contact_id, earlier.id < msg_id)
        .order_by(earlier.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(
        handoff.label("handoff_case"),
        recent.label("recent"),
        breaker.label("breaker_until"),
        select(Inbound.received_at).where(Inbound.id == previous).scalar_subquery().label("prev_received_at"),
        select(Inbound.state).where(Inbound.id == previous).scalar_subquery().label("prev_state"),
    )


@cache
def _fenced_statement(lock: bool):
    q = (
        select(Inbound, Contact)
        .outerjoin(Contact, Contact.id == Inbound.contact_id)
        .where(Inbound.id == bindparam("inbound_id"))
    )
    return q.with_for_update(of=Inbound) if lock else q


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), BACKOFF_CAP_S))


@dataclass(frozen=True)
class Context:
    """What phase 1 reads about the contact besides the message (:meth:`Handler._context`)."""

    handoff_case: int | None
    recent: int  # the sender's messages in the minute up to this one
    breaker_until: datetime | None
    prev_received_at: datetime | None
    prev_state: str | None


@dataclass
class Plan:
    """What phase 1 decided: ask Rasa this, for this contact."""

    contact_uuid: str
    text: str
    language: str
    channel: str
    risk: dict | None
    case_id: int | None
    restart: bool
    #: no risk word, and the message says the relative is fine or back (metadata.reassured)
    reassured: bool = False


class Handler:
    def __init__(
        self,
        config: Config,
        db: Database,
        rasa: RasaClient | RasaReplicas,
        owner: str,
        answers: Answers | None = None,
    ):
        self.config = config
        self.db = db
        self.rasa = rasa
        self.owner = owner
        self.answers = answers or Answers(config)

    # ------------------------------------------------------------------
    def handle(self, inbound_id: int, screen: bool = False) -> str:
        """Process one claimed message; returns what became of it (for logs and tests).

        ``screen``: an earlier message of this contact waits for Rasa; do
        everything that does not need Rasa now (keywords, risk words, hand-off)
        and put the message back to be answered in its turn."""
        try:
            plan_or_outcome = self._screen(inbound_id)
        except Exception:
            logger.exception("inbound %s: error before Rasa", inbound_id)
            self._requeue_after_error(inbound_id, "error before Rasa")
            return "error"
        if isinstance(plan_or_outcome, str):
            return plan_or_outcome
        plan = plan_or_outcome
        if screen:
            return self._screened(inbound_id, plan)
        try:
            if plan.restart:
                self.rasa.restart_session(plan.contact_uuid)
            reply = self.rasa.send(
                plan.contact_uuid,
                plan.text,
                language=plan.language,
                channel=plan.channel,
                risk=plan.risk,
                reassured=plan.reassured,
            )
        except RasaUnavailable as exc:
            logger.warning("inbound %s: Rasa unavailable (%s); will retry", inbound_id, exc)
            return self._rasa_down(inbound_id, plan, str(exc))
        except RasaRejected as exc:
            logger.error("inbound %s: Rasa refused it (%s); marked failed for staff", inbound_id, exc)
            self._give_up(inbound_id, f"rasa refused: {exc}")
            return "rejected"
        try:
            return self._answer(inbound_id, plan, reply)
        except Exception:
            logger.exception("inbound %s: error storing Rasa's reply", inbound_id)
            self._requeue_after_error(inbound_id, "error storing reply")
            return "error"

    # --- phase 1: everything before Rasa, in one transaction ---------------
    def _screen(self, inbound_id: int) -> Plan | str:
        cfg = self.config
        with self.db.session() as s:
            fenced = self._fenced_with_contact(s, inbound_id)
            if fenced is None:
                return "lost-lease"
            msg, contact = fenced
            now = clock.now()
            text = msg.body or ""
            if contact is None or contact.erased_at is not None:
                self._finish(msg, Inbound.DONE, error="contact erased")
                return "erased"
            # 1. keywords (recognised first: a Latin STOP/HELP says nothing about the language)
            hit = self.answers.keyword(text) if msg.kind == "text" else None

            # language: remembered unless the contact chose one; a keyword alone
            # (STOP, HELP in Latin letters, as posters teach) keeps the contact's language
            # or a short Latin "yes"/"thanks" keeps it too (lanpya.text.next_language)
            if msg.kind == "text" and not (hit and contact.language) and not contact.language_chosen:
                contact.language = next_language(contact.language, text)
            language = contact.language or cfg.default_language
            msg.language = language

            rasa_text = text
            if hit is not None:
                msg.keyword = hit.kind[:16]
                if hit.kind in RASA_KEYWORD_INTENTS:
                    rasa_text = RASA_KEYWORD_INTENTS[hit.kind]
                else:
                    outcome = self._keyword(s, msg, contact, hit.kind, hit.value)
                    if outcome:
                        return outcome

            # 2. risk lexicon: a case opens whatever else happens
            risk = None
            case_id = None
            reassured = False
            if msg.kind == "text" and hit is None:
                risk, case_id = self._lexicon(s, msg, contact, text, language)
                reassured = risk is None and self.answers.reassured(text, language)

            # 3. opted out: nothing but the opt-out confirmation goes to them
            if contact.opted_out:
                self._finish(msg, Inbound.DONE, error="opted out")
                return "opted-out"

            # what steps 4, 5 and the session need, in one round trip
            ctx = self._context(s, msg, contact, now)

            # 4. hand-off: the agent has the conversation
            handoff = ctx.handoff_case
            if handoff is not None:
                msg.case_id = handoff
                self._finish(msg, Inbound.HANDOFF)
                return "handoff"

            # 5. abuse limits
            if cfg.sender_limit_per_min > 0 and ctx.recent > cfg.sender_limit_per_min:
                self._throttle_notice(s, msg, contact, language)
                self._finish(msg, Inbound.DONE, error="throttled")
                return "throttled"
            if (
                ctx.breaker_until is not None
                and ctx.breaker_until > now
                and limits.is_new_contact(contact, now)
            ):
                self._finish(msg, Inbound.DONE, error="flood breaker")
                return "flood-held"

            # non-text: the assistant only reads text
            if msg.kind != "text":
                key = "unsupported_media" if contact.channel == Contact.VIBER else "text_only"
                if msg.kind in MEDIA_KINDS:
                    self._reply(s, msg, contact, key, language, dedupe=f"media:{msg.id}")
                self._finish(msg, Inbound.DONE)
                return "non-text"
            if not rasa_text.strip():
                self._finish(msg, Inbound.DONE, error="empty")
                return "empty"

            restart = self._session_expired_from(ctx, msg)
            return Plan(
                contact_uuid=contact.uuid,
                text=rasa_text,
                language=language,
                channel=contact.channel,
                risk=risk,
                case_id=case_id,
                restart=restart,
                reassured=reassured,
            )

    def _fenced_with_contact(self, s: Session, inbound_id: int) -> tuple[Inbound, Contact | None] | None:
        """The message and its contact in one query, if this worker still holds the lease
        (PostgreSQL: the message row locked, the contact row not)."""
        row = s.execute(_fenced_statement(self.db.is_postgres), {"inbound_id": inbound_id}).first()
        msg = row[0] if row is not None else None
        if msg is None or msg.state != Inbound.PROCESSING or msg.lease_owner != self.owner:
            logger.warning("inbound %s: no longer ours (state or lease changed)", inbound_id)
            return None
        return msg, row[1]

    def _context(self, s: Session, msg: Inbound, contact: Contact, now) -> Context:
        """The open hand-off case, the sender's messages in the last minute, the flood
        breaker and the previous message, in one statement (four before)."""
        row = s.execute(
            _context_statement(),
            {"contact_id": contact.id, "msg_id": msg.id, "since": msg.received_at - limits.WINDOW},
        ).one()
        return Context(
            row.handoff_case, row.recent or 0, row.breaker_until, row.prev_received_at, row.prev_state
        )

    def _session_expired_from(self, ctx: Context, msg: Inbound) -> bool:
        """A new Rasa session after inactivity, or after an agent handed the contact back."""
        if ctx.prev_received_at is None:
            return False  # a new tracker starts its own session
        if ctx.prev_state == Inbound.HANDOFF:
            return True
        return msg.received_at - ctx.prev_received_at > timedelta(minutes=self.config.session_timeout_min)

    def _fenced(self, s: Session, inbound_id: int) -> Inbound | None:
        """The message, if this worker still holds its lease."""
        q = select(Inbound).where(Inbound.id == inbound_id)
        if self.db.is_postgres:
            q = q.with_for_update()
        msg = s.scalar(q)
        if msg is None or msg.state != Inbound.PROCESSING or msg.lease_owner != self.owner:
            logger.warning("inbound %s: no longer ours (state or lease changed)", inbound_id)
            return None
        return msg

    def _finish(self, msg: Inbound, state: str, error: str | None = None) -> None:
        msg.state = state
        msg.processed_at = clock.now()
        msg.lease_owner = None
        msg.lease_until = None
        msg.error = error

    def _reply(
        self,
        s: Session,
        msg: Inbound,
        contact: Contact,
        key: str,
        language: str,
        *,
        seq: int = 0,
        dedupe: str | None = None,
        case_id: int | None = None,
    ) -> Outbox | None:
        body = self.answers.answer(key, language, channel=contact.channel)
        if not body:
            logger.error("no %r answer in %s: nothing sent", key, language)
            return None
        return outbox.enqueue(
            s,
            body=body,
            channel=contact.channel,
            contact=contact,
            kind=Outbox.REPLY,
            inbound_id=msg.id,
            case_id=case_id,
            seq=seq,
            dedupe_key=dedupe,
        )

    # --- keywords -------------------------------------------------------------
    def _keyword(
        self, s: Session, msg: Inbound, contact: Contact, kind: str, value: str | None
    ) -> str | None:
        now = clock.now()
        if kind == "stop":
            contact.opted_out = True
            contact.opted_out_at = now
            contact.subscribed = False
            # nothing unsent goes to them any more, except this confirmation
            s.execute(
                update(Outbox)
                .where(Outbox.contact_id == contact.id, Outbox.state == Outbox.QUEUED)
                .values(state=Outbox.CANCELLED, error="opted out")
            )
            self._reply(s, msg, contact, "stop_confirm", msg.language, dedupe=f"kw:{msg.id}")
        elif kind == "start":
            contact.opted_out = False
            contact.opted_out_at = None
            self._reply(s, msg, contact, "start_confirm", msg.language, dedupe=f"kw:{msg.id}")
        elif kind == "help":
            if contact.opted_out:
                self._finish(msg, Inbound.DONE, error="opted out")
                return "opted-out"
            self._reply(s, msg, contact, "help", msg.language, dedupe=f"kw:{msg.id}")
        elif kind in ("lang", "language") and value:
            contact.language = value
            contact.language_chosen = True
            msg.language = value
            if not contact.opted_out:
                self._reply(s, msg, contact, "language_set", value, dedupe=f"kw:{msg.id}")
        else:
            return None  # not ours: let the message go on to Rasa
        self._finish(msg, Inbound.DONE)
        return f"keyword:{kind}"

    # --- risk lexicon -----------------------------------------------------------
    def _lexicon(
        self, s: Session, msg: Inbound, contact: Contact, text: str, language: str
    ) -> tuple[dict | None, int | None]:
        hit = self.answers.lexicon_match(text, language)
        if hit is None:
            return None, None
        category = getattr(hit, "category", "other")
        severity = getattr(hit, "severity", Case.URGENT)
        case_id = self._open_case(s, msg, contact, category, severity, "lexicon", language)
        if case_id is not None:
            logger.info("inbound %s: risk lexicon %s/%s -> case %s", msg.id, category, severity, case_id)
        return {"category": category, "severity": severity, "case_id": case_id}, case_id

    def _open_case(
        self,
        s: Session,
        msg: Inbound,
        contact: Contact,
        category: str,
        severity: str,
        source: str,
        language: str,
    ) -> int | None:
        """Open (or join) the contact's case and alert on-call; the case id, or None."""
        escalation = module("lanpya.escalation")
        if escalation is None:
            logger.error("inbound %s: a report but escalation is unavailable", msg.id)
            return None
        case, created = escalation.open_case(
            s,
            contact,
            category=category,
            severity=severity,
            source=source,
            language=language,
            channel=contact.channel,
            config=self.config,
        )
        s.flush()
        msg.case_id = case.id
        if created:
            try:
                escalation.alert_on_call(s, case, self.config)
            except Exception:  # the case is open; the chaser will alert
                logger.exception("case %s: alerting on-call failed", case.id)
        return case.id

    def _throttle_notice(self, s: Session, msg: Inbound, contact: Contact, language: str) -> None:
        window = limits.throttle_window(msg.received_at)
        self._reply(s, msg, contact, "throttled", language, dedupe=f"throttled:{contact.id}:{window}")

    # --- phase 3: Rasa answered -------------------------------------------------
    def _answer(self, inbound_id: int, plan: Plan, reply) -> str:
        with self.db.session() as s:
            fenced = self._fenced_with_contact(s, inbound_id)
            if fenced is None:
                return "lost-lease"
            msg, contact = fenced
            msg.intent = (reply.intent or None) and reply.intent[:60]
            msg.confidence = reply.confidence
            if reply.case_id and not msg.case_id:
                msg.case_id = reply.case_id
            if msg.intent in REPORT_INTENTS and not msg.case_id:
                # the bot saw a report but no case came back (the action server or the
                # internal API was down): the worker opens it, so no report is missed
                severity = Case.EMERGENCY if msg.intent == "emergency" else Case.URGENT
                self._open_case(s, msg, contact, "other", severity, "bot", plan.language)
                logger.warning(
                    "inbound %s: %s without a case from the bot; worker opened case %s",
                    msg.id,
                    msg.intent,
                    msg.case_id,
                )
            if plan.restart:
                contact.session_started_at = clock.now()
            seq = 0
            if contact.opted_out:  # a STOP can't overtake (one at a time), but be safe
                self._finish(msg, Inbound.DONE, error="opted out")
                return "opted-out"
            for m in reply.messages:
                body, extra = self._rendered(m, plan.language, contact.channel)
                if not body:
                    continue
                outbox.enqueue(
                    s,
                    body=body,
                    channel=contact.channel,
                    contact=contact,
                    kind=Outbox.REPLY,
                    inbound_id=msg.id,
                    case_id=msg.case_id,
                    seq=seq,
                    dedupe_key=f"reply:{msg.id}:{seq}",
                    extra=extra,
                    guarded=True,  # the locked, leased message: no other writer of its replies
                )
                seq += 1
            if seq == 0:
                # the bot said nothing (a failed response, an unknown one): never leave
                # someone who wrote to us in silence
                logger.warning(
                    "inbound %s: Rasa answered with no text (intent %s); default answer sent",
                    msg.id,
                    msg.intent,
                )
                self._reply(
                    s,
                    msg,
                    contact,
                    "utter_default",
                    plan.language,
                    dedupe=f"reply:{msg.id}:0",
                    case_id=msg.case_id,
                )
            self._finish(msg, Inbound.DONE)
            return "answered"

    def _rendered(self, m: dict, language: str, channel: str) -> tuple[str, dict | None]:
        """One of Rasa's messages as the text to send. A response comes as its key,
        the language the turn left the conversation in and its placeholder values
        (bot/channels/nlg.py): rendered here from the content files; an unknown key
        gets the default answer. A literal text passes as it is."""
        key = m.get("response")
        if not (isinstance(key, str) and key):
            body = (m.get("text") or "").strip()
            return body, ({"buttons": m["buttons"]} if m.get("buttons") else None)
        lang = m.get("language") if m.get("language") in LANGUAGES else language
        raw = m.get("variables") if isinstance(m.get("variables"), dict) else {}
        variables = {
            k: v for k, v in raw.items()
            if isinstance(k, str) and k not in RENDER_ARGS and isinstance(v, (str, int, float))
        }
        body = self.answers.answer(key, lang, channel=channel, **variables)
        if body is None:
            body = self.answers.answer("utter_default", lang, channel=channel)
        buttons = self.answers.buttons(key, lang) if channel == "viber" else []
        return (body or "").strip(), ({"buttons": buttons} if buttons else None)

    # --- Rasa is away -----------------------------------------------------------
    def _ack_case(self, s: Session, msg: Inbound, contact: Contact, plan: Plan) -> None:
        """Tell a reporter their case is open (once per case), before Rasa answers."""
        if plan.case_id is not None:
            self._reply(
                s, msg, contact, "case_ack", plan.language,
                dedupe=f"case_ack:{plan.case_id}", case_id=plan.case_id,
            )

    def _screened(self, inbound_id: int, plan: Plan) -> str:
        with self.db.session() as s:
            msg = self._fenced(s, inbound_id)
            if msg is None:
                return "lost-lease"
            contact = s.get(Contact, msg.contact_id)
            self._ack_case(s, msg, contact, plan)
            msg.screened_at = clock.now()
            msg.state = Inbound.QUEUED
            msg.lease_owner = None
            msg.lease_until = None
            return "screened"

    def _rasa_down(self, inbound_id: int, plan: Plan, reason: str) -> str:
        cfg = self.config
        with self.db.session() as s:
            msg = self._fenced(s, inbound_id)
            if msg is None:
                return "lost-lease"
            contact = s.get(Contact, msg.contact_id)
            now = clock.now()
            msg.attempts += 1
            msg.state = Inbound.QUEUED
            msg.next_attempt_at = now + backoff(msg.attempts)
            msg.lease_owner = None
            msg.lease_until = None
            msg.error = f"rasa: {reason}"[:200]
            outcome = "retry"
            # a report while Rasa is away: the case is open; tell them so, once
            self._ack_case(s, msg, contact, plan)
            if now - msg.received_at >= timedelta(seconds=cfg.holding_reply_after_s):
                already = s.scalar(
                    select(
                        exists().where(
                            Inbound.contact_id == contact.id,
                            Inbound.state.in_((Inbound.QUEUED, Inbound.PROCESSING)),
                            Inbound.held_reply_sent.is_(True),
                        )
                    )
                )
                if not already and not contact.opted_out:
                    if self._reply(s, msg, contact, "holding", plan.language, dedupe=f"holding:{msg.id}"):
                        msg.held_reply_sent = True
                        outcome = "holding"
            return outcome

    def _give_up(self, inbound_id: int, reason: str) -> None:
        with self.db.session() as s:
            msg = self._fenced(s, inbound_id)
            if msg is not None:
                self._finish(msg, Inbound.FAILED, error=reason[:200])

    def _requeue_after_error(self, inbound_id: int, reason: str) -> None:
        """A bug or a database hiccup: retry a few times, then FAILED (staff can see it)."""
        try:
            with self.db.session() as s:
                msg = self._fenced(s, inbound_id)
                if msg is None:
                    return
                msg.attempts += 1
                if msg.attempts >= MAX_ERRORS:
                    self._finish(msg, Inbound.FAILED, error=reason)
                    return
                msg.state = Inbound.QUEUED
                msg.next_attempt_at = clock.now() + backoff(msg.attempts)
                msg.lease_owner = None
                msg.lease_until = None
                msg.error = reason
        except Exception:
            logger.exception("inbound %s: could not requeue; its lease will expire", inbound_id)


def pending_count(s: Session) -> int:
    return (
        s.scalar(
            select(func.count())
            .select_from(Inbound)
            .where(Inbound.state.in_((Inbound.QUEUED, Inbound.PROCESSING)))
        )
        or 0
    )
