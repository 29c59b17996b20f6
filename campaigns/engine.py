"""The campaign engine: audiences, preview, schedule, fire, pause, report.

Everything here takes a session or a :class:`~lanpya.db.Database` and reads
time from :mod:`lanpya.clock`, so tests drive it with a fake clock.

Exactly once
    A fire is a ``CampaignFire`` row, unique per (campaign, step,
    scheduled_for). It is materialised into the outbox with ``INSERT ...
    SELECT`` in chunks of contact ids, one transaction per chunk, each row
    keyed ``fire:<fire_id>:contact:<contact_id>`` (sequence steps:
    ``seq:<campaign_id>:<step>:contact:<contact_id>``) under the outbox's
    unique ``dedupe_key`` with ``ON CONFLICT DO NOTHING``: re-running a fire,
    or resuming it after a crash, adds nothing.

Bodies
    ``outbox.body`` is a Fernet token. A campaign text is the same for every
    recipient of a language, so it is encrypted once per (fire, language) and
    the token is bound into the ``INSERT ... SELECT``; per-row encryption is
    never needed (measured in docs/benchmarks.md).

Pause, resume, cancel
    The campaign row is the switch. Pausing turns the campaign's ``queued``
    outbox rows into ``paused`` (which ``dispatch_due`` never claims) in the
    same transaction; resuming turns them back; cancelling makes them
    ``cancelled``. Materialisation re-reads the campaign status, locked, in
    every chunk, so a pause also stops a fire being written. Rows already
    claimed (``sending``) at that moment are the only ones that still go.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    LargeBinary,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lanpya import clock, crypto
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import (
    Audience,
    Campaign,
    CampaignFire,
    CampaignMessage,
    Case,
    Contact,
    Outbox,
)
from lanpya.phone import DEFAULT_TIMEZONE
from lanpya.text import segments_for

logger = logging.getLogger(__name__)

LANGUAGES = ("en", "my", "kac", "shn")
#: an outbox row of a paused campaign: kept, never claimed by dispatch_due
PAUSED = "paused"
#: Twilio keeps queued messages for at most this long
TWILIO_QUEUE_WINDOW = timedelta(hours=10)
#: contacts per materialisation transaction
CHUNK = 20_000
#: sequences: a step that fell due while the scheduler was down is still sent this late
SEQUENCE_CATCHUP = timedelta(days=1)
LEASE_NAME = "scheduler"

FILTER_KEYS = ("languages", "states", "townships", "roles", "channels", "countries")


class CampaignError(ValueError):
    """A request the engine refuses; the message says why (shown to staff)."""


@dataclass
class Fence:
    """The scheduler's lease at the time it started a job (fencing token)."""

    holder: str
    epoch: int

    def check(self, session: Session) -> None:
        from campaigns.lease import holds

        if not holds(session, LEASE_NAME, self.holder, self.epoch):
            raise LostLease(f"{self.holder} no longer holds the scheduler lease at epoch {self.epoch}")


class LostLease(RuntimeError):
    pass


# --- audiences ----------------------------------------------------------------------
def clean_filter(raw: dict | None) -> dict:
    """Validate an audience filter: lists of strings under known keys."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise CampaignError("filter must be an object")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key not in FILTER_KEYS:
            raise CampaignError(f"unknown filter field {key!r} (allowed: {', '.join(FILTER_KEYS)})")
        if value in (None, "", []):
            continue
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CampaignError(f"filter field {key!r} must be a list of strings")
        if key == "languages":
            bad = [v for v in value if v not in LANGUAGES]
            if bad:
                raise CampaignError(f"unknown language(s) {bad}; use {', '.join(LANGUAGES)}")
        if key == "channels":
            bad = [v for v in value if v not in Contact.CHANNELS]
            if bad:
                raise CampaignError(f"unknown channel(s) {bad}")
        out[key] = sorted(set(value))
    return out


def _language(config: Config):
    return func.coalesce(Contact.language, config.default_language)


def reachable_conditions() -> list:
    """Who may get any campaign message at all (re-checked by dispatch at send time)."""
    return [
        Contact.subscribed.is_(True),
        Contact.opted_out.is_(False),
        Contact.unreachable.is_(False),
        Contact.erased_at.is_(None),
        Contact.address.is_not(None),
        ~exists(select(Case.id).where(Case.contact_id == Contact.id, Case.status.in_(Case.OPEN))),
    ]


def audience_conditions(flt: dict, config: Config) -> list:
    conds = reachable_conditions()
    if flt.get("languages"):
        conds.append(_language(config).in_(flt["languages"]))
    if flt.get("states"):
        conds.append(Contact.state.in_(flt["states"]))
    if flt.get("townships"):
        conds.append(Contact.township.in_(flt["townships"]))
    if flt.get("channels"):
        conds.append(Contact.channel.in_(flt["channels"]))
    if flt.get("countries"):
        conds.append(Contact.country.in_(flt["countries"]))
    if flt.get("roles"):
        # roles is a JSON list; its text form holds each role quoted
        text = cast(Contact.roles, String)
        conds.append(or_(*[text.like(f'%"{r}"%') for r in flt["roles"]]))
    return conds


def audience_size(session: Session, flt: dict, config: Config) -> int:
    return session.scalar(select(func.count(Contact.id)).where(*audience_conditions(flt, config))) or 0


def audience_breakdown(session: Session, flt: dict, config: Config) -> list[dict]:
    """Recipients by (language, channel, country)."""
    lang = _language(config).label("language")
    rows = session.execute(
        select(lang, Contact.channel, Contact.country, func.count(Contact.id))
        .where(*audience_conditions(flt, config))
        .group_by(lang, Contact.channel, Contact.country)
    ).all()
    return [{"language": r[0], "channel": r[1], "country": r[2], "count": r[3]} for r in rows]


def create_audience(session: Session, name: str, flt: dict | None, staff_id: int | None = None) -> Audience:
    if not name or not name.strip():
        raise CampaignError("an audience needs a name")
    audience = Audience(name=name.strip()[:120], filter=clean_filter(flt), created_by=staff_id)
    session.add(audience)
    session.flush()
    return audience


# --- campaigns ------------------------------------------------------------------------
def _parse_hhmm(value: str, what: str) -> time:
    try:
        hh, mm = value.split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError) as exc:
        raise CampaignError(f"{what} must be HH:MM, got {value!r}") from exc


def cron_trigger(expr: str):
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expr, timezone=ZoneInfo("Asia/Yangon"))
    except (ValueError, TypeError) as exc:
        raise CampaignError(f"bad cron expression {expr!r}: {exc}") from exc


def create_campaign(
    session: Session,
    config: Config,
    *,
    name: str,
    audience_id: int,
    schedule_kind: str = Campaign.ONCE,
    run_at: datetime | None = None,
    cron: str | None = None,
    messages: list[dict] | None = None,
    quiet_start: str | None = None,
    quiet_end: str | None = None,
    staff_id: int | None = None,
) -> Campaign:
    """``messages``: ``[{"step": 0, "offset_days": 0, "language": "my", "body": "..."}]``."""
    if not name or not name.strip():
        raise CampaignError("a campaign needs a name")
    if session.get(Audience, audience_id) is None:
        raise CampaignError(f"no audience {audience_id}")
    if schedule_kind not in (Campaign.ONCE, Campaign.CRON, Campaign.SEQUENCE):
        raise CampaignError("schedule_kind must be once, cron or sequence")
    if schedule_kind == Campaign.CRON:
        if not cron:
            raise CampaignError("a cron campaign needs a cron expression (Asia/Yangon)")
        cron_trigger(cron)
    qs = quiet_start or config.quiet_start
    qe = quiet_end or config.quiet_end
    _parse_hhmm(qs, "quiet_start")
    _parse_hhmm(qe, "quiet_end")
    campaign = Campaign(
        name=name.strip()[:120],
        audience_id=audience_id,
        schedule_kind=schedule_kind,
        run_at=run_at,
        cron=cron if schedule_kind == Campaign.CRON else None,
        quiet_start=qs,
        quiet_end=qe,
        created_by=staff_id,
        status=Campaign.DRAFT,
    )
    session.add(campaign)
    session.flush()
    for m in messages or []:
        set_message(session, campaign, language=m.get("language"), body=m.get("body"),
                    step=int(m.get("step", 0)), offset_days=m.get("offset_days"))
    return campaign


def set_message(session: Session, campaign: Campaign, *, language: str | None, body: str | None,
                step: int = 0, offset_days: int | None = None) -> CampaignMessage:
    if campaign.status not in (Campaign.DRAFT, Campaign.AWAITING_APPROVAL):
        raise CampaignError("content can only change while the campaign is a draft")
    if language not in LANGUAGES:
        raise CampaignError(f"language must be one of {', '.join(LANGUAGES)}")
    body = (body or "").strip()
    if not body:
        raise CampaignError(f"empty text for {language}")
    if len(body) > 1600:
        raise CampaignError("a campaign text is at most 1600 characters")
    if campaign.schedule_kind == Campaign.SEQUENCE:
        if offset_days is None or int(offset_days) < 0:
            raise CampaignError("each sequence step needs offset_days >= 0 (days after joining)")
    msg = session.scalar(select(CampaignMessage).where(
        CampaignMessage.campaign_id == campaign.id, CampaignMessage.step == step,
        CampaignMessage.language == language))
    if msg is None:
        msg = CampaignMessage(campaign_id=campaign.id, step=step, language=language, body=body)
        session.add(msg)
    msg.body = body
    msg.offset_days = int(offset_days) if offset_days is not None else None
    if campaign.status == Campaign.AWAITING_APPROVAL:
        campaign.status = Campaign.DRAFT  # approved content must be what is sent
        campaign.approved_by = None
    session.flush()
    return msg


def steps_of(session: Session, campaign_id: int) -> dict[int, dict]:
    """{step: {"offset_days": n, "texts": {language: body}}}"""
    out: dict[int, dict] = {}
    for m in session.scalars(select(CampaignMessage).where(CampaignMessage.campaign_id == campaign_id)
                             .order_by(CampaignMessage.step, CampaignMessage.language)):
        entry = out.setdefault(m.step, {"offset_days": m.offset_days, "texts": {}})
        entry["texts"][m.language] = m.body
        if m.offset_days is not None:
            entry["offset_days"] = m.offset_days
    return out


def missing_content(session: Session, config: Config, campaign: Campaign) -> dict[int, list[str]]:
    """{step: [languages present in the audience without text]}; empty when complete."""
    audience = session.get(Audience, campaign.audience_id)
    present = {b["language"] for b in audience_breakdown(session, audience.filter or {}, config) if b["count"]}
    steps = steps_of(session, campaign.id)
    if not steps:
        return {0: sorted(present) or ["(no text at all)"]}
    return {step: sorted(present - set(s["texts"])) for step, s in steps.items() if present - set(s["texts"])}


# --- pricing and preview ----------------------------------------------------------------
def price_per_segment(config: Config, channel: str, country: str | None) -> float:
    prices = config.segment_prices
    return prices.get(f"{channel}:{country or '*'}", prices.get(f"{channel}:*", 0.0))


def text_preview(body: str) -> dict:
    seg = segments_for(body)
    return {"encoding": seg.encoding, "segments": seg.segments, "units": seg.units, "remaining": seg.remaining}


def preview(session: Session, config: Config, campaign: Campaign) -> dict:
    """What a send would cost and take, before it is scheduled."""
    audience = session.get(Audience, campaign.audience_id)
    breakdown = audience_breakdown(session, audience.filter or {}, config)
    steps = steps_of(session, campaign.id)
    texts = []
    for step, s in sorted(steps.items()):
        for lang, body in sorted(s["texts"].items()):
            texts.append({"step": step, "offset_days": s["offset_days"], "language": lang, **text_preview(body)})
    by_lang: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    segments_total = 0
    cost = 0.0
    messages_by_channel: dict[str, int] = {}
    missing = missing_content(session, config, campaign)
    for b in breakdown:
        by_lang[b["language"]] = by_lang.get(b["language"], 0) + b["count"]
        by_channel[b["channel"]] = by_channel.get(b["channel"], 0) + b["count"]
        for s in steps.values():
            body = s["texts"].get(b["language"])
            if body is None:
                continue
            segs = segments_for(body).segments
            n_msgs = b["count"]
            messages_by_channel[b["channel"]] = messages_by_channel.get(b["channel"], 0) + n_msgs
            if b["channel"] == Contact.SMS:
                segments_total += segs * n_msgs
                cost += segs * n_msgs * price_per_segment(config, Contact.SMS, b["country"])
            else:
                cost += n_msgs * price_per_segment(config, Contact.VIBER, b["country"])
    recipients = sum(by_channel.values())
    # time to deliver: SMS rate is in messages/s (Twilio queues per segment, so count segments)
    seconds = {}
    if segments_total:
        seconds[Contact.SMS] = segments_total / max(config.twilio_rate, 1e-6)
    if messages_by_channel.get(Contact.VIBER):
        seconds[Contact.VIBER] = messages_by_channel[Contact.VIBER] / max(config.viber_rate, 1e-6)
    warnings = []
    if seconds.get(Contact.SMS, 0) > TWILIO_QUEUE_WINDOW.total_seconds():
        warnings.append(
            f"SMS would take {seconds[Contact.SMS] / 3600:.1f} h at {config.twilio_rate:g}/s, longer than "
            "Twilio's 10-hour queue window: messages past it fail (error 30001). Split the audience or raise the rate."
        )
    if missing:
        warnings.append("missing text for " + "; ".join(f"step {k}: {', '.join(v)}" for k, v in missing.items()))
    needs_approval = recipients > config.approval_threshold
    return {
        "campaign_id": campaign.id,
        "recipients": recipients,
        "by_language": by_lang,
        "by_channel": by_channel,
        "breakdown": breakdown,
        "texts": texts,
        "segments": segments_total,
        "estimated_cost": round(cost, 4),
        "currency": config.segment_price_currency,
        "seconds_to_deliver": {k: round(v, 1) for k, v in seconds.items()},
        "warnings": warnings,
        "missing_content": missing,
        "needs_approval": needs_approval,
        "approval_threshold": config.approval_threshold,
    }


# --- life cycle -------------------------------------------------------------------------
def schedule(session: Session, config: Config, campaign: Campaign, staff_id: int | None = None,
             run_at: datetime | None = None, cron: str | None = None) -> Campaign:
    """Draft → scheduled (or awaiting_approval when the audience is large)."""
    if campaign.status not in (Campaign.DRAFT, Campaign.AWAITING_APPROVAL):
        raise CampaignError(f"campaign is {campaign.status}; only a draft can be scheduled")
    if run_at is not None:
        campaign.run_at = run_at
    if cron is not None:
        cron_trigger(cron)
        campaign.cron = cron
    if campaign.schedule_kind == Campaign.ONCE and campaign.run_at is None:
        raise CampaignError("a one-off campaign needs run_at (UTC)")
    if campaign.schedule_kind == Campaign.CRON and not campaign.cron:
        raise CampaignError("a cron campaign needs a cron expression")
    if campaign.schedule_kind != Campaign.ONCE and campaign.run_at is None:
        campaign.run_at = clock.now()  # recurring: starts now
    missing = missing_content(session, config, campaign)
    if missing:
        raise CampaignError("every language in the audience needs text first — missing: "
                            + "; ".join(f"step {k}: {', '.join(v)}" for k, v in missing.items()))
    audience = session.get(Audience, campaign.audience_id)
    size = audience_size(session, audience.filter or {}, config)
    if size > config.approval_threshold and campaign.approved_by is None:
        campaign.status = Campaign.AWAITING_APPROVAL
    else:
        campaign.status = Campaign.SCHEDULED
    campaign.updated_at = clock.now()
    session.flush()
    logger.info("campaign %s %s (%d recipients now)", campaign.id, campaign.status, size)
    return campaign


def approve(session: Session, config: Config, campaign: Campaign, staff_id: int) -> Campaign:
    """A second staff member approves a large send."""
    if campaign.status != Campaign.AWAITING_APPROVAL:
        raise CampaignError(f"campaign is {campaign.status}, not awaiting approval")
    if staff_id is None:
        raise CampaignError("approval needs a staff member")
    if campaign.created_by is not None and staff_id == campaign.created_by:
        raise CampaignError("approval must come from a second staff member, not the author")
    campaign.approved_by = staff_id
    campaign.status = Campaign.SCHEDULED
    campaign.updated_at = clock.now()
    session.flush()
    return campaign


def _lock_campaign(session: Session, campaign_id: int) -> Campaign | None:
    q = select(Campaign).where(Campaign.id == campaign_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    return session.scalar(q.execution_options(populate_existing=True))


def _fire_ids(campaign_id: int):
    return select(CampaignFire.id).where(CampaignFire.campaign_id == campaign_id).scalar_subquery()


def pause(session: Session, campaign_id: int) -> int:
    """Stop sending now; returns outbox rows held."""
    campaign = _lock_campaign(session, campaign_id)
    if campaign is None or campaign.status not in (Campaign.SCHEDULED, Campaign.DONE):
        raise CampaignError("only a scheduled campaign can be paused")
    campaign.status = Campaign.PAUSED
    campaign.updated_at = clock.now()
    held = session.execute(
        update(Outbox).where(Outbox.fire_id.in_(_fire_ids(campaign_id)), Outbox.state == Outbox.QUEUED)
        .values(state=PAUSED).execution_options(synchronize_session=False)
    ).rowcount or 0
    logger.info("campaign %s paused (%d rows held)", campaign_id, held)
    return held


def resume(session: Session, campaign_id: int) -> int:
    campaign = _lock_campaign(session, campaign_id)
    if campaign is None or campaign.status != Campaign.PAUSED:
        raise CampaignError("only a paused campaign can be resumed")
    campaign.status = Campaign.SCHEDULED
    campaign.updated_at = clock.now()
    back = session.execute(
        update(Outbox).where(Outbox.fire_id.in_(_fire_ids(campaign_id)), Outbox.state == PAUSED)
        .values(state=Outbox.QUEUED).execution_options(synchronize_session=False)
    ).rowcount or 0
    logger.info("campaign %s resumed (%d rows back in the queue)", campaign_id, back)
    return back


def cancel(session: Session, campaign_id: int) -> int:
    campaign = _lock_campaign(session, campaign_id)
    if campaign is None or campaign.status in (Campaign.CANCELLED,):
        raise CampaignError("campaign is already cancelled or missing")
    campaign.status = Campaign.CANCELLED
    campaign.updated_at = clock.now()
    n = session.execute(
        update(Outbox).where(Outbox.fire_id.in_(_fire_ids(campaign_id)), Outbox.state.in_([Outbox.QUEUED, PAUSED]))
        .values(state=Outbox.CANCELLED, error="campaign cancelled").execution_options(synchronize_session=False)
    ).rowcount or 0
    logger.info("campaign %s cancelled (%d rows cancelled)", campaign_id, n)
    return n


# --- quiet hours -------------------------------------------------------------------------
def quiet_not_before(at: datetime, tz: str | None, quiet_start: str, quiet_end: str) -> datetime | None:
    """None if ``at`` (naive UTC) is inside sending hours in ``tz``; else the next
    moment sending hours begin there (naive UTC)."""
    zone = ZoneInfo(tz or DEFAULT_TIMEZONE)
    start = _parse_hhmm(quiet_start, "quiet_start")  # quiet begins
    end = _parse_hhmm(quiet_end, "quiet_end")  # quiet ends: sending resumes
    local = at.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    t = local.time()
    if start == end:
        return None  # no quiet hours
    if start > end:  # overnight, e.g. 20:00-08:00
        quiet = t >= start or t < end
    else:
        quiet = start <= t < end
    if not quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    resume_local = datetime.combine(day, end, tzinfo=zone)
    return resume_local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def enforce_quiet_hours(db: Database, *, fence: Fence | None = None) -> int:
    """Hold campaign rows still queued when their recipients' quiet hours begin
    (a long send that runs past 20:00 local): they get ``not_before`` = the next
    end of quiet hours. Run every 30 s by the scheduler; returns rows held."""
    now = clock.now()
    held = 0
    with db.session() as s:
        campaigns = s.execute(
            select(Campaign.id, Campaign.quiet_start, Campaign.quiet_end).where(
                Campaign.id.in_(select(CampaignFire.campaign_id).join(Outbox, Outbox.fire_id == CampaignFire.id)
                                .where(Outbox.state == Outbox.QUEUED, Outbox.kind == Outbox.CAMPAIGN).distinct()))
        ).all()
        zones = [z for (z,) in s.execute(select(Contact.timezone).distinct())]
    for cid, qs, qe in campaigns:
        for zone in zones:
            until = quiet_not_before(now, zone, qs, qe)
            if until is None:
                continue
            with db.session() as s:
                if fence is not None:
                    fence.check(s)
                held += s.execute(
                    update(Outbox).where(
                        Outbox.fire_id.in_(_fire_ids(cid)), Outbox.state == Outbox.QUEUED,
                        or_(Outbox.not_before.is_(None), Outbox.not_before < until),
                        Outbox.contact_id.in_(select(Contact.id).where(Contact.timezone == zone)),
                    ).values(not_before=until, next_attempt_at=until).execution_options(synchronize_session=False)
                ).rowcount or 0
    if held:
        logger.info("quiet hours: %d campaign row(s) held until morning", held)
    return held


# --- firing ------------------------------------------------------------------------------
@dataclass
class FireResult:
    fire_id: int
    step: int
    scheduled_for: datetime
    inserted: int = 0
    state: str = ""
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)


def _due_times(campaign: Campaign, now: datetime, grace: timedelta) -> tuple[list[datetime], list[datetime]]:
    """(to fire, missed) scheduled times of a once/cron campaign up to ``now``."""
    if campaign.schedule_kind == Campaign.ONCE:
        if campaign.run_at is None or campaign.run_at > now:
            return [], []
        if now - campaign.run_at > grace:
            return [], [campaign.run_at]
        return [campaign.run_at], []
    if campaign.schedule_kind == Campaign.CRON:
        trigger = cron_trigger(campaign.cron)
        utc = ZoneInfo("UTC")
        start = max(now - grace, campaign.run_at or now - grace)
        times: list[datetime] = []
        prev = None
        t = trigger.get_next_fire_time(None, start.replace(tzinfo=utc))
        while t is not None and t.astimezone(utc).replace(tzinfo=None) <= now and len(times) < 10_000:
            times.append(t.astimezone(utc).replace(tzinfo=None))
            prev = t
            t = trigger.get_next_fire_time(prev, prev + timedelta(seconds=1))
        if not times:
            return [], []
        # coalesce: only the latest due time fires; earlier ones (not yet fired) are reported missed
        return [times[-1]], times[:-1]
    return [], []


def _get_or_create_fire(db: Database, campaign_id: int, step: int, when: datetime, state: str,
                        fence: Fence | None, note: str | None = None) -> tuple[int, bool]:
    with db.session() as s:
        if fence is not None:
            fence.check(s)
        existing = s.scalar(select(CampaignFire.id).where(
            CampaignFire.campaign_id == campaign_id, CampaignFire.step == step, CampaignFire.scheduled_for == when))
        if existing is not None:
            return existing, False
    try:
        with db.session() as s:
            if fence is not None:
                fence.check(s)
            fire = CampaignFire(campaign_id=campaign_id, step=step, scheduled_for=when, state=state,
                                fired_at=clock.now(), note=note)
            s.add(fire)
            s.flush()
            return fire.id, True
    except IntegrityError:
        with db.session() as s:
            return s.scalar(select(CampaignFire.id).where(
                CampaignFire.campaign_id == campaign_id, CampaignFire.step == step,
                CampaignFire.scheduled_for == when)), False


def record_missed(db: Database, campaign_id: int, when: datetime, note: str, fence: Fence | None = None) -> int:
    """A fire that will not be sent (past its grace time): reported, never silently lost."""
    fire_id, created = _get_or_create_fire(db, campaign_id, 0, when, CampaignFire.MISSED, fence, note[:200])
    if created:
        logger.warning("campaign %s: fire for %s missed (%s)", campaign_id, when.isoformat(), note)
    return fire_id


def missed(db: Database, campaign_id: int, when: datetime, *, fence: Fence | None = None) -> int | None:
    """APScheduler skipped a run past its grace time: record it; a one-off campaign is then done."""
    with db.session() as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None or campaign.status != Campaign.SCHEDULED:
            return None
        kind = campaign.schedule_kind
    if kind == Campaign.SEQUENCE:
        return None  # sequences catch up by themselves (SEQUENCE_CATCHUP)
    fire_id = record_missed(db, campaign_id, when, "scheduler was down past the grace time", fence)
    if kind == Campaign.ONCE:
        _mark_done(db, campaign_id, fence)
    return fire_id


def _mark_done(db: Database, campaign_id: int, fence: Fence | None) -> None:
    with db.session() as s:
        if fence is not None:
            fence.check(s)
        campaign = _lock_campaign(s, campaign_id)
        if campaign is not None and campaign.status == Campaign.SCHEDULED:
            campaign.status = Campaign.DONE


def fire_due(db: Database, config: Config, campaign_id: int, *, fence: Fence | None = None,
             grace: timedelta | None = None) -> list[FireResult]:
    """Fire whatever of this campaign is due now (idempotent: call it as often as you like)."""
    now = clock.now()
    grace = grace if grace is not None else timedelta(seconds=config.campaign_misfire_grace_s)
    with db.session() as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None or campaign.status != Campaign.SCHEDULED:
            return []
        kind = campaign.schedule_kind
        to_fire, missed = ([], []) if kind == Campaign.SEQUENCE else _due_times(campaign, now, grace)
    if kind == Campaign.SEQUENCE:
        return fire_sequence(db, config, campaign_id, fence=fence)
    for when in missed:
        record_missed(db, campaign_id, when, "coalesced or past grace time", fence)
    results = []
    for when in to_fire:
        fire_id, _created = _get_or_create_fire(db, campaign_id, 0, when, CampaignFire.PENDING, fence)
        results.append(materialise(db, config, fire_id, fence=fence))
    if kind == Campaign.ONCE and (missed or (results and all(r.state == CampaignFire.QUEUED for r in results))):
        _mark_done(db, campaign_id, fence)
    return results


def fire_sequence(db: Database, config: Config, campaign_id: int, *, fence: Fence | None = None) -> list[FireResult]:
    """Sequence steps: each contact gets step N once, ``offset_days`` after joining."""
    now = clock.now()
    bucket = now.replace(second=0, microsecond=0)
    results = []
    with db.session() as s:
        steps = steps_of(s, campaign_id)
    for step in sorted(steps):
        fire_id, _ = _get_or_create_fire(db, campaign_id, step, bucket, CampaignFire.PENDING, fence)
        result = materialise(db, config, fire_id, fence=fence)
        if result.inserted == 0 and result.stopped is None:
            with db.session() as s:  # nobody was due: leave no empty fire behind
                if not s.scalar(select(func.count(Outbox.id)).where(Outbox.fire_id == fire_id)):
                    s.execute(delete(CampaignFire).where(CampaignFire.id == fire_id))
                    continue
        results.append(result)
    return results


def materialise(db: Database, config: Config, fire_id: int, *, fence: Fence | None = None,
                chunk: int = CHUNK) -> FireResult:
    """Write one outbox row per (fire, contact) with INSERT ... SELECT, chunk by chunk.

    Safe to re-run at any point (crash, pause, resume): the unique dedupe key
    drops what is already there."""
    with db.session() as s:
        fire = s.get(CampaignFire, fire_id)
        campaign = s.get(Campaign, fire.campaign_id)
        audience = s.get(Audience, campaign.audience_id)
        result = FireResult(fire_id, fire.step, fire.scheduled_for, state=fire.state)
        if fire.state in (CampaignFire.QUEUED, CampaignFire.DONE, CampaignFire.MISSED):
            return result
        texts = steps_of(s, campaign.id).get(fire.step, {"texts": {}, "offset_days": None})
        flt = audience.filter or {}
        conds = audience_conditions(flt, config)
        lo, hi = s.execute(select(func.min(Contact.id), func.max(Contact.id)).where(*conds)).one()
        zones = [z for (z,) in s.execute(select(Contact.timezone).where(*conds).distinct())]
        fire.state = CampaignFire.MATERIALISING
        kind, cid, step = campaign.schedule_kind, campaign.id, fire.step
        quiet = (campaign.quiet_start, campaign.quiet_end)
        when = fire.scheduled_for
    if not texts["texts"] or lo is None:
        return _finish(db, fire_id, result, fence)
    now = clock.now()
    # one Fernet token per language, bound into the statement
    lang = _language(config)
    tokens = {lg: crypto.keyring().encrypt(body) for lg, body in texts["texts"].items()}
    segs = {lg: segments_for(body) for lg, body in texts["texts"].items()}
    body_expr = case({lg: literal(tok, LargeBinary) for lg, tok in tokens.items()}, value=lang)
    enc_expr = case({lg: literal(sg.encoding) for lg, sg in segs.items()}, value=lang)
    seg_expr = case({lg: literal(sg.segments) for lg, sg in segs.items()}, value=lang)
    send_from = max(now, when)
    nb = {z: quiet_not_before(send_from, z, *quiet) for z in zones}
    nb_values = {z: v for z, v in nb.items() if v is not None}
    if nb_values:
        nb_expr = case({z: literal(v) for z, v in nb_values.items()}, value=Contact.timezone, else_=literal(None))
        next_expr = case({z: literal(v) for z, v in nb_values.items()}, value=Contact.timezone, else_=literal(now))
    else:
        nb_expr = literal(None)
        next_expr = literal(now)
    where = list(conds) + [lang.in_(list(tokens))]
    if kind == Campaign.SEQUENCE:
        offset = timedelta(days=texts["offset_days"] or 0)
        with db.session() as s:
            start = max(s.get(Campaign, cid).run_at or now, now - SEQUENCE_CATCHUP)
        where += [Contact.joined_at.is_not(None), Contact.joined_at <= now - offset, Contact.joined_at >= start - offset]
        key = literal(f"seq:{cid}:{step}:contact:") + cast(Contact.id, String)
    else:
        key = literal(f"fire:{fire_id}:contact:") + cast(Contact.id, String)
    cols = ["channel", "kind", "priority", "contact_id", "body", "encoding", "segments", "dedupe_key",
            "fire_id", "seq", "state", "attempts", "next_attempt_at", "not_before", "created_at", "updated_at"]
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    table = Outbox.__table__
    start_id = lo - 1
    while start_id < hi:
        end_id = start_id + chunk
        with db.session() as s:
            if fence is not None:
                fence.check(s)
            c = _lock_campaign(s, cid)
            if c is None or c.status != Campaign.SCHEDULED:
                result.stopped = c.status if c is not None else "deleted"
                logger.info("fire %s: stopped at contact id %d (campaign %s)", fire_id, start_id, result.stopped)
                return result
            sel = select(
                Contact.channel, literal(Outbox.CAMPAIGN), literal(Outbox.PRIORITY[Outbox.CAMPAIGN]), Contact.id,
                body_expr, enc_expr, seg_expr, key, literal(fire_id), literal(0), literal(Outbox.QUEUED),
                literal(0), next_expr, nb_expr, literal(now), literal(now),
            ).where(*where, Contact.id > start_id, Contact.id <= end_id)
            stmt = dialect_insert(table).from_select(cols, sel).on_conflict_do_nothing(index_elements=["dedupe_key"])
            if dialect == "postgresql":
                # psycopg reports no rowcount for INSERT ... SELECT: count what the CTE returned
                ins = stmt.returning(table.c.id).cte("ins")
                result.inserted += s.scalar(select(func.count()).select_from(ins)) or 0
            else:
                result.inserted += s.execute(stmt).rowcount or 0
        start_id = end_id
    return _finish(db, fire_id, result, fence)


def _finish(db: Database, fire_id: int, result: FireResult, fence: Fence | None) -> FireResult:
    with db.session() as s:
        if fence is not None:
            fence.check(s)
        fire = s.get(CampaignFire, fire_id)
        fire.state = CampaignFire.QUEUED
        fire.recipients = s.scalar(select(func.count(Outbox.id)).where(Outbox.fire_id == fire_id)) or 0
        result.state = fire.state
    logger.info("fire %s queued: %d new outbox rows", fire_id, result.inserted)
    return result


def resume_unfinished(db: Database, config: Config, *, fence: Fence | None = None) -> list[FireResult]:
    """Fires left pending/materialising (crash, pause) whose campaign is scheduled again."""
    with db.session() as s:
        ids = list(s.scalars(
            select(CampaignFire.id).join(Campaign, Campaign.id == CampaignFire.campaign_id)
            .where(CampaignFire.state.in_([CampaignFire.PENDING, CampaignFire.MATERIALISING]),
                   Campaign.status == Campaign.SCHEDULED)
        ))
    return [materialise(db, config, i, fence=fence) for i in ids]


# --- reports --------------------------------------------------------------------------------
REPORT_STATES = {
    "queued": (Outbox.QUEUED, Outbox.SENDING),
    "held": (PAUSED,),
    "sent": (Outbox.SENT,),
    "delivered": (Outbox.DELIVERED, Outbox.READ),
    "failed": (Outbox.FAILED, Outbox.UNDELIVERED),
    "cancelled": (Outbox.CANCELLED, Outbox.SKIPPED),
    "unsent": (Outbox.UNSENT,),
}


def _bucket(state: str) -> str:
    for name, states in REPORT_STATES.items():
        if state in states:
            return name
    return state


def report(session: Session, config: Config, campaign_id: int) -> dict:
    """Per fire: queued, sent, delivered, failed (by error code), opted out afterwards;
    by language, township and channel."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"no campaign {campaign_id}")
    lang = _language(config).label("language")
    opted_after = and_(Contact.opted_out.is_(True), Contact.opted_out_at.is_not(None),
                       Contact.opted_out_at >= Outbox.created_at)
    rows = session.execute(
        select(Outbox.fire_id, Outbox.state, Outbox.error_code, lang, Contact.township, Outbox.channel,
               func.count(Outbox.id), func.sum(case((opted_after, 1), else_=0)))
        .join(Contact, Contact.id == Outbox.contact_id)
        .join(CampaignFire, CampaignFire.id == Outbox.fire_id)
        .where(CampaignFire.campaign_id == campaign_id)
        .group_by(Outbox.fire_id, Outbox.state, Outbox.error_code, lang, Contact.township, Outbox.channel)
    ).all()
    fires = {f.id: f for f in session.scalars(select(CampaignFire).where(CampaignFire.campaign_id == campaign_id)
                                               .order_by(CampaignFire.scheduled_for))}

    def blank() -> dict:
        return {k: 0 for k in REPORT_STATES} | {"failed_by_code": {}, "opted_out_after": 0, "total": 0}

    per_fire = {fid: blank() for fid in fires}
    totals = blank()
    dims: dict[str, dict[str, dict]] = {"language": {}, "township": {}, "channel": {}}
    for fire_id, state, code, language, township, channel, n, opted in rows:
        b = _bucket(state)
        for target in (per_fire.setdefault(fire_id, blank()), totals,
                       dims["language"].setdefault(language or "?", blank()),
                       dims["township"].setdefault(township or "?", blank()),
                       dims["channel"].setdefault(channel, blank())):
            target[b] = target.get(b, 0) + n
            target["total"] += n
            target["opted_out_after"] += int(opted or 0)
            if b == "failed":
                key = code or "unknown"
                target["failed_by_code"][key] = target["failed_by_code"].get(key, 0) + n
    return {
        "campaign_id": campaign_id,
        "name": campaign.name,
        "status": campaign.status,
        "totals": totals,
        "fires": [
            {"fire_id": fid, "step": f.step, "scheduled_for": f.scheduled_for.isoformat(), "state": f.state,
             "note": f.note, "recipients": f.recipients, **per_fire.get(fid, blank())}
            for fid, f in fires.items()
        ],
        "by": dims,
    }


def report_csv(rep: dict) -> str:
    """One line per (dimension, value), plus one per fire."""
    out = io.StringIO()
    w = csv.writer(out)
    cols = list(REPORT_STATES) + ["opted_out_after", "total", "failed_by_code"]
    w.writerow(["campaign_id", "dimension", "value"] + cols)

    def codes(d: dict) -> str:
        return ";".join(f"{k}={v}" for k, v in sorted(d["failed_by_code"].items()))

    for f in rep["fires"]:
        w.writerow([rep["campaign_id"], "fire", f"{f['fire_id']}@{f['scheduled_for']}:{f['state']}"]
                   + [f[c] for c in cols[:-1]] + [codes(f)])
    for dim, values in rep["by"].items():
        for value, d in sorted(values.items()):
            w.writerow([rep["campaign_id"], dim, value] + [d[c] for c in cols[:-1]] + [codes(d)])
    w.writerow([rep["campaign_id"], "total", "all"] + [rep["totals"][c] for c in cols[:-1]] + [codes(rep["totals"])])
    return out.getvalue()
