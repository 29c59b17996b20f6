"""Campaigns: audiences, schedules, cost before sending, exactly-once
materialisation into the outbox, reports, and the scheduler process.

Modules: :mod:`campaigns.lease` (leader lease with a fencing epoch),
:mod:`campaigns.engine` (audiences, preview, schedule, fire, pause, report),
:mod:`campaigns.jobs` (what APScheduler runs, referenced by text),
:mod:`campaigns.scheduler` (``lanpya scheduler``), :mod:`campaigns.cli`.
"""
