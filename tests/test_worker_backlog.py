"""Under a backlog, a report does not wait for its turn: messages queued for
more than 5 s are screened out of turn (risk words open the case and alert
on-call at once), then answered in order as usual."""

from __future__ import annotations

from sqlalchemy import select

from conversations import claim
from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya.ingest import receive
from lanpya.models import Case, Contact, Inbound
from tests.rasa_fake import FakeRasa


def _say(db, sender: str, text: str, n: int) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-backlog-{n}", address=sender, text=text).inbound_id


def test_a_report_behind_a_backlog_opens_its_case_before_its_turn(config, db, clock):
    older = [_say(db, f"+9592500011{i:02d}", "how do I get a passport", i) for i in range(20)]
    clock.advance(seconds=1)
    report = _say(db, "+959250001199", "my sister was sold to a man in China and cannot leave", 99)
    claims = claim.claim(db, "w1", limit=4)
    assert report not in [c.inbound_id for c in claims]  # not yet a backlog: strict order
    claim.release(db, "w1")
    clock.advance(seconds=6)
    claims = claim.claim(db, "w1", limit=4)
    picked = {c.inbound_id: c.screen for c in claims}
    assert picked.get(report) is True  # screened out of turn ...
    assert sum(1 for i in older if i in picked) == 3  # ... and the queue still moves in order
    with FakeRasa() as rasa:
        worker = Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
        assert worker.handler.handle(report, screen=True) == "screened"
        with db.session() as s:
            msg = s.get(Inbound, report)
            assert (msg.state, msg.screened_at is not None, msg.case_id is not None) == (Inbound.QUEUED, True, True)
            assert s.scalar(select(Case.id).where(Case.id == msg.case_id)) is not None
        claim.release(db, "w1")
        worker.drain()
        with db.session() as s:
            assert s.get(Inbound, report).state == Inbound.DONE
            assert s.scalar(select(Case.id).where(Case.contact_id == s.get(Inbound, report).contact_id)) is not None
            assert len(list(s.scalars(select(Case)))) == 1  # screening twice joins the same case
            contact = s.get(Contact, s.get(Inbound, report).contact_id)
            # the report still went to Rasa in its turn
            assert rasa.messages_from(contact.uuid) == ["my sister was sold to a man in China and cannot leave"]
