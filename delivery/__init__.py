"""Delivery: eligibility, MIME, the exactly-once outbox ledger, transports, engagement and KPIs.

Pure code, no Dagster.  Start with ``delivery/README.md``: the reason precedence, the ledger
states and the exact guarantee, the transports and their configuration keys.

* :mod:`delivery.eligibility` — one decision + reason per customer, campaign and period
* :mod:`delivery.addresses` — syntax, role / no-reply, excluded domains and TLDs
* :mod:`delivery.prefs` — the preference store as delivery reads and writes it
* :mod:`delivery.messages`, :mod:`delivery.mime` — the bytes of each message
* :mod:`delivery.outbox` — the ledger, its journal and reconcile
* :mod:`delivery.send` — the send loop and its report
* :mod:`delivery.transports` — file, SMTP, SES
* :mod:`delivery.engagement` — SES events → ``email_events`` + suppressions
* :mod:`delivery.kpis` — KPIs per campaign and period
* :mod:`delivery.explain` — ``valuemail explain``
* :mod:`delivery.smtp_sink` — a recording local SMTP server (tests, bench, local runs)
"""
