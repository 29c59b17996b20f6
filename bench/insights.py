"""Insights benchmark: the insights page's queries on PostgreSQL with
1,000,000 messages and 10,000 cases.

    .venv/bin/python -m bench --only insights
    .venv/bin/python -m bench.insights [--quick] [--keep]

A fresh database (``BENCH_POSTGRES_URL`` or ``TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``) is migrated, then filled with
``INSERT ... SELECT generate_series`` over one year: 50,000 contacts in 20
townships, 1,000,000 inbound messages (24 intents, 4 languages, 2 channels),
10,000 cases, 200,000 campaign outbox rows; then ``VACUUM ANALYZE``.

Measured: each query the page runs (one per table, plus the headline
figures and the filter options) in three views — the page's default (one
month, by week), a whole year by month broken down by township, and one
month filtered to one township broken down by language. Target: every query
≤ 1 s. ``--quick`` uses a tenth of the rows.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import date

from sqlalchemy import create_engine, text

from bench import Result
from lanpya import insights
from lanpya.db import Database, normalise_url, upgrade
from lanpya.insights import Filters

TARGET_S = 1.0
TOWNSHIPS = ["Myitkyina", "Bhamo", "Waingmaw", "Mohnyin", "Hpakant", "Putao", "Momauk", "Mansi", "Shwegu",
             "Tanai", "Lashio", "Muse", "Kutkai", "Namhkam", "Hsenwi", "Kyaukme", "Hsipaw", "Namtu", "Mongyai",
             "Kunlong"]
INTENTS = ["migrate_legally", "documents", "check_agency", "check_job_offer", "fees_debt", "rights_at_work",
           "marriage_broker", "trafficking_signs", "trouble_abroad", "find_mrc", "report_concern", "emergency",
           "talk_to_person", "subscribe", "delete_data", "out_of_scope", "greet", "menu", "thanks", "affirm",
           "deny", "goodbye", "bot_challenge", "choose_language"]
YEAR_START = "2025-11-01"


def admin_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL") or \
        "postgresql://postgres@127.0.0.1:5432/test"


def _array(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def fill(url: str, messages: int, cases: int, contacts: int, campaign_rows: int) -> dict[str, float]:
    """Generate the rows; returns seconds per table."""
    towns = _array(TOWNSHIPS)
    intents = _array(INTENTS)
    timings = {}
    statements = {
        "contact": f"""
            INSERT INTO contact (uuid, channel, address_hash, timezone, language_chosen, encoding, state, township,
                                 language, roles, subscribed, joined_at, opted_out, opted_out_at, unreachable,
                                 created_at)
            SELECT md5('c' || g), CASE WHEN g % 3 = 0 THEN 'viber' ELSE 'sms' END, md5('a' || g), 'Asia/Yangon',
                   false, 'unicode', CASE WHEN g % 20 < 10 THEN 'Kachin' ELSE 'Shan' END,
                   ({towns})[1 + g % 20], (ARRAY['my','kac','shn','en'])[1 + (g / 7) % 4],
                   CASE g % 4 WHEN 0 THEN '["planning"]' WHEN 1 THEN '["family"]' WHEN 2 THEN '["returnee"]'
                        ELSE '[]' END::json,
                   g % 5 <> 0, TIMESTAMP '{YEAR_START}' + (g % 365) * INTERVAL '1 day' + (g % 1440) * INTERVAL '1 minute',
                   g % 17 = 0,
                   CASE WHEN g % 17 = 0 THEN TIMESTAMP '{YEAR_START}' + (g % 365 + 3) * INTERVAL '1 day' END,
                   false, TIMESTAMP '{YEAR_START}'
            FROM generate_series(1::bigint, {contacts}) AS g""",
        "inbound": f"""
            INSERT INTO inbound (channel, provider_id, contact_id, kind, received_at, state, attempts,
                                 held_reply_sent, language, intent, confidence)
            SELECT CASE WHEN c % 3 = 0 THEN 'viber' ELSE 'sms' END, 'b' || g, c, 'text',
                   TIMESTAMP '{YEAR_START}' + (g % 365) * INTERVAL '1 day' + ((g * 7919) % 86400) * INTERVAL '1 second',
                   'done', 1, false, (ARRAY['my','kac','shn','en'])[1 + (c / 7) % 4],
                   ({intents})[1 + (g * 31) % 24], 0.9
            FROM (SELECT g, 1 + (g * 104729) % {contacts} AS c FROM generate_series(1::bigint, {messages}) AS g) AS s""",
        "case": f"""
            INSERT INTO "case" (contact_id, severity, category, status, source, language, channel, township,
                                handoff, created_at, deadline_at, acknowledged_at, closed_at, chase_step, anonymised)
            SELECT c, (ARRAY['emergency','urgent','normal'])[1 + g % 3],
                   (ARRAY['trafficking','forced_marriage','missing_person','labour_exploitation','other'])[1 + g % 5],
                   CASE WHEN g % 4 = 0 THEN 'new' ELSE 'closed' END, 'bot',
                   (ARRAY['my','kac','shn','en'])[1 + (c / 7) % 4], CASE WHEN c % 3 = 0 THEN 'viber' ELSE 'sms' END,
                   ({towns})[1 + c % 20], false, t, t + INTERVAL '15 minutes',
                   CASE WHEN g % 10 <> 0 THEN t + (g % 40) * INTERVAL '1 minute' END,
                   CASE WHEN g % 4 <> 0 THEN t + (g % 96) * INTERVAL '1 hour' END, 0, false
            FROM (SELECT g, 1 + (g * 7907) % {contacts} AS c,
                         TIMESTAMP '{YEAR_START}' + (g % 365) * INTERVAL '1 day' + (g % 1440) * INTERVAL '1 minute' AS t
                  FROM generate_series(1::bigint, {cases}) AS g) AS s""",
        "outbox": f"""
            INSERT INTO outbox (channel, kind, priority, contact_id, dedupe_key, seq, state, attempts, created_at,
                                sent_at)
            SELECT CASE WHEN c % 3 = 0 THEN 'viber' ELSE 'sms' END, 'campaign', 5, c,
                   'bench:' || g, 0,
                   (ARRAY['delivered','delivered','delivered','sent','read','failed','undelivered','cancelled'])[1 + g % 8],
                   1, t, t
            FROM (SELECT g, 1 + (g * 613 + g / 40) % {contacts} AS c,
                         TIMESTAMP '{YEAR_START}' + (g % 40) * INTERVAL '9 days' + INTERVAL '4 hours' AS t
                  FROM generate_series(1::bigint, {campaign_rows}) AS g) AS s""",
    }
    engine = create_engine(url)
    with engine.begin() as conn:
        for name, sql in statements.items():
            started = time.monotonic()
            conn.execute(text(sql))
            timings[name] = time.monotonic() - started
    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        started = time.monotonic()
        conn.execute(text("VACUUM ANALYZE"))
        timings["vacuum analyze"] = time.monotonic() - started
    engine.dispose()
    return timings


def views() -> list[tuple[str, Filters, str]]:
    return [
        ("one month by week", Filters(date(2026, 9, 1), date(2026, 9, 30), bucket="week"), "period"),
        ("a year by township", Filters(date(2025, 11, 1), date(2026, 10, 31), bucket="month"), "township"),
        ("one township, a month, by language",
         Filters(date(2026, 9, 1), date(2026, 9, 30), bucket="week", township="Lashio"), "language"),
    ]


def measure(url: str, repeat: int = 3) -> list[tuple[str, str, float, int]]:
    """(view, query, best seconds of ``repeat``, rows) for every page query."""
    database = Database(url)
    out = []
    try:
        for view, filters, by in views():
            queries = [(m, (lambda s, m=m, f=filters, b=by: insights.table(s, m, f, [b], 5)))
                       for m in insights.MEASURES]
            queries += [(f"headline {m}", (lambda s, m=m, f=filters: insights.table(s, m, f, [], 5)))
                        for m in ("questions", "reports", "response", "reach", "subscribers")]
            queries.append(("filter options", lambda s: insights.filter_options(s, 5)))
            for name, run_query in queries:
                best, rows = float("inf"), 0
                for _ in range(repeat):
                    with database.session() as s:
                        started = time.perf_counter()
                        result = run_query(s)
                        best = min(best, time.perf_counter() - started)
                    rows = len(result.rows) if hasattr(result, "rows") else len(result)
                out.append((view, name, best, rows))
    finally:
        database.dispose()
    return out


def run(quick: bool = False, keep: bool = False) -> list[Result]:
    scale = 10 if quick else 1
    messages, cases, contacts, campaign_rows = 1_000_000 // scale, 10_000 // scale, 50_000 // scale, 200_000 // scale
    admin = normalise_url(admin_url())
    name = f"lanpya_bench_insights_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + "/" + name
    results: list[Result] = []
    try:
        upgrade(url)
        timings = fill(url, messages, cases, contacts, campaign_rows)
        print("generated: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), flush=True)
        rows = measure(url)
        width = max(len(v) for v, *_ in rows)
        for view, query, seconds, n in rows:
            print(f"{view:<{width}}  {query:<22} {seconds * 1000:8.1f} ms  {n:>4} rows", flush=True)
        label = f"{messages:,} messages, {cases:,} cases (PostgreSQL)"
        for view, *_ in views():
            mine = [r for r in rows if r[0] == view]
            worst = max(mine, key=lambda r: r[2])
            total = sum(r[2] for r in mine)
            results.append(Result("insights", f"slowest page query, {view}; {label}", f"≤ {TARGET_S:.0f} s",
                                  f"{worst[2] * 1000:.0f} ms ({worst[1]}); all {len(mine)}: {total * 1000:.0f} ms",
                                  worst[2] <= TARGET_S))
    finally:
        if not keep:
            with engine.connect() as conn:
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        else:
            print(f"kept {url}")
        engine.dispose()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.insights")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated database (prints its URL)")
    args = parser.parse_args()
    from bench.__main__ import table

    print(table(run(quick=args.quick, keep=args.keep)))
