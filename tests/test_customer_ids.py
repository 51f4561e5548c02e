"""Customer ids: every customer's files are their own, whatever the id; one valid-id rule everywhere.

Issue #11: ``acme.alice`` and ``acme.bob`` shared one ``acme.html`` (Alice got Bob's e-mail and his
unsubscribe link), long ids shared one ``.eml``, a CJK id failed with Errno 36, and a 201-character
id was ingested and then failed the e-mail step for every customer.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.transports.base import Envelope, LookupItem
from delivery.transports.file import FileTransport
from tests.test_email_stage import WEEK, make_warehouse
from valuemail.config import load_config
from valuemail.emails import render_period_emails
from valuemail.ids import MAX_ID_LENGTH, file_stem, id_invalid_sql, id_problem, id_problem_sql
from valuemail.warehouse import connect

NAMES = ["Zelda", "Yusuf", "Xiomara", "Wilhelmina", "Valentin", "Ursula", "Tobias", "Svetlana"]
TASKS = [1234, 2345, 3456, 4567, 5678, 6789, 7891, 8912]
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(s: str) -> bool:
    return id_problem(s) is None


_ids = st.one_of(
    st.text(min_size=1, max_size=MAX_ID_LENGTH),
    st.from_regex(r"[A-Za-z0-9._/-]{1,200}", fullmatch=True),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=MAX_ID_LENGTH),
    st.builds(lambda a, b: f"{a}.{b}", st.from_regex(r"[a-z]{1,8}", fullmatch=True),
              st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
    st.builds(lambda a, n: (a * n)[:n], st.sampled_from(["x", "王", "a.b/", "-"]), st.integers(1, MAX_ID_LENGTH)),
).filter(_valid)


@st.composite
def id_sets(draw, most: int = len(NAMES)) -> list[str]:
    """Adversarial ids plus their case-only and ``.suffix`` twins, all distinct and valid."""
    base = draw(st.lists(_ids, min_size=1, max_size=4, unique=True))
    twins = [t for b in base for t in (b.swapcase(), b.upper(), f"{b[:MAX_ID_LENGTH - 4]}.bob")]
    out = list(dict.fromkeys(x for x in base + twins if _valid(x)))
    return out[:most]


def _token(customer_id: str, what: str) -> str:
    return hashlib.sha256(f"{what}|{customer_id}".encode()).hexdigest()[:24]


def _links(customer_id: str, campaign: str) -> tuple[str, str]:
    return (f"https://valuemail.example/p/{_token(customer_id, 'p')}",
            f"https://valuemail.example/u/{_token(customer_id, 'u')}")


def _figure(n: int) -> re.Pattern:
    return re.compile(rf"(?<![\d,.]){n:,}(?![\d,])")


@SETTINGS
@given(ids=id_sets())
def test_every_rendered_email_carries_only_its_own_name_figures_and_links(ids):
    customers = [(cid, NAMES[i], "en", "pro", datetime(2024, 1, 1), True, TASKS[i], "active")
                 for i, cid in enumerate(ids)]
    with tempfile.TemporaryDirectory() as home:
        config = load_config(home=home)
        con = connect(config.warehouse_path)
        try:
            make_warehouse(con, customers=customers)
            render_period_emails(con, config, WEEK, links_for=_links)
            rows = dict(con.execute("SELECT customer_id, html_path || '|' || text_path FROM emails").fetchall())
        finally:
            con.close()
        assert set(rows) == set(ids)
        files = sorted(p.name for p in (Path(home) / "emails" / WEEK.campaign / WEEK.key).iterdir())
        assert len(files) == 2 * len(ids) == len({f.lower() for f in files})  # also on case-insensitive disks
        for i, cid in enumerate(ids):
            for path in rows[cid].split("|"):
                body = Path(path).read_text(encoding="utf-8")
                assert NAMES[i] in body and _figure(TASKS[i]).search(body)
                assert _token(cid, "p") in body and _token(cid, "u") in body
                for j, other in enumerate(ids):
                    if j != i:
                        assert NAMES[j] not in body and not _figure(TASKS[j]).search(body)
                        assert _token(other, "p") not in body and _token(other, "u") not in body


@SETTINGS
@given(ids=id_sets(most=12))
def test_the_file_outbox_keeps_one_eml_per_customer(ids):
    with tempfile.TemporaryDirectory() as root:
        transport = FileTransport(Path(root))
        for n, cid in enumerate(ids):
            transport.send(_envelope(cid, n), f"Message-ID: <m{n}@x>\r\n\r\nfor {cid}".encode())
        files = list((Path(root) / "weekly" / WEEK.key).iterdir())
        assert len(files) == len(ids) == len({f.name.lower() for f in files})
        assert all(len(f.name.encode()) <= 255 for f in files)
        found = transport.lookup([LookupItem(f"<m{n}@x>", "weekly", WEEK.key, cid) for n, cid in enumerate(ids)])
        assert found.keys() == {f"<m{n}@x>" for n in range(len(ids))}
        for n, cid in enumerate(ids):
            assert transport.path_for("weekly", WEEK.key, cid).read_bytes().endswith(f"for {cid}".encode())


def _envelope(customer_id: str, n: int) -> Envelope:
    return Envelope(sender="b@x.example", recipient="r@x.example", message_id=f"<m{n}@x>", ref=str(n),
                    campaign="weekly", period=WEEK.key, customer_id=customer_id)


def test_the_file_outbox_regressions_of_issue_11(tmp_path):
    long_a, long_b = "a" * 190 + "1", "a" * 190 + "2"
    cjk = "顧客" * 60  # 120 characters, 360 bytes of UTF-8
    transport = FileTransport(tmp_path)
    for n, cid in enumerate([long_a, long_b, cjk, "ACME", "acme", "acme.alice", "acme.bob"]):
        path = Path(transport.send(_envelope(cid, n), f"Message-ID: <m{n}@x>\r\n\r\n{n}".encode()))
        assert path.read_bytes().endswith(str(n).encode())
    assert len(list((tmp_path / "weekly" / WEEK.key).iterdir())) == 7


def test_chart_files_are_per_customer_also_on_case_insensitive_disks(config, warehouse):
    from valuemail.emails import render_period_charts

    ids = ["ACME", "acme", "acme.alice", "acme.bob", "顧客" * 100]
    make_warehouse(warehouse, customers=[(cid, NAMES[i], "en", "pro", datetime(2024, 1, 1), True, TASKS[i], "active")
                                         for i, cid in enumerate(ids)])
    render_period_charts(warehouse, config, WEEK)
    paths = [r[0] for r in warehouse.execute("SELECT path FROM email_charts").fetchall()]
    assert len(paths) == len({p.lower() for p in paths}) == len(ids) * 3  # week, peers, share card each
    assert {p.split("/")[-1] for p in paths} == {f"{file_stem(cid)}.png" for cid in ids}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=MAX_ID_LENGTH + 5), _ids), min_size=1, max_size=20))
def test_stems_are_short_ascii_without_dots_and_the_sql_rule_is_the_python_rule(ids):
    for customer_id in ids:
        stem = file_stem(customer_id)
        assert re.fullmatch(r"[a-z0-9_-]{1,60}", stem)
        assert file_stem(customer_id.swapcase()) != stem or customer_id.swapcase() == customer_id
    assert len({file_stem(x) for x in ids}) == len(set(ids))
    with duckdb.connect() as con:
        got = con.execute(f"SELECT {id_problem_sql('x')}, {id_invalid_sql('x')} "
                          "FROM unnest($1) WITH ORDINALITY AS u(x, i) ORDER BY i", [ids]).fetchall()
    assert got == [(id_problem(x), id_problem(x) is not None) for x in ids]


def test_readable_ids_keep_their_names():
    assert file_stem("c-anna") == "c-anna" and file_stem("c0003") == "c0003"
    assert file_stem("acme.alice").startswith("acme_alice-") and file_stem("Anna").startswith("anna-")
    assert file_stem(file_stem("acme.alice")) != file_stem("acme.alice")  # a hashed stem as an id is hashed again
    assert [id_problem(x) for x in ("", "x" * 201, "a@b.example", "x" * 200)] == [
        "is empty", "is longer than 200 characters", "contains @ (looks like an email address; ids must be opaque)", None]


def test_ingest_rejects_ids_the_later_stages_could_not_use(config, warehouse, tmp_path):
    from tests.test_ingest import ANN, CUSTOMER_HEADER, EVENT_HEADER, GOOD, ingest, quarantine, write_csv

    long_id, mail_id = "x" * 201, "bob@acme.example"
    customers = write_csv(tmp_path / "customers.csv", CUSTOMER_HEADER,
                          [ANN, [long_id, *ANN[1:]], [mail_id, *ANN[1:]], ["c" * 200, *ANN[1:]]])
    events = write_csv(tmp_path / "events.csv", EVENT_HEADER,
                       [GOOD, ["e1", long_id, *GOOD[2:]], ["e2", mail_id, *GOOD[2:]]])
    report = ingest(warehouse, config, customers, events)
    stored = {r[0] for r in warehouse.execute("SELECT customer_id FROM customers").fetchall()}
    assert stored == {"c1", "c" * 200}
    assert warehouse.execute("SELECT list(customer_id) FROM events").fetchone()[0] == ["c1"]
    rejected = [(q["source_file"].rsplit("/", 1)[-1], q["row_number"], q["field"], q["severity"], q["reason"])
                for q in quarantine(warehouse)]
    shown = "'" + "x" * 80 + "'"
    assert rejected == [
        ("customers.csv", 2, "customer_id", "rejected", f"customer id {shown} is longer than 200 characters"),
        ("customers.csv", 3, "customer_id", "rejected",
         f"customer id '{mail_id}' contains @ (looks like an email address; ids must be opaque)"),
        ("events.csv", 2, "customer_id", "rejected", f"customer id {shown} is longer than 200 characters"),
        ("events.csv", 3, "customer_id", "rejected",
         f"customer id '{mail_id}' contains @ (looks like an email address; ids must be opaque)"),
    ]
    assert report.quarantined == 4


def test_an_invalid_id_stored_earlier_is_decided_invalid_customer_and_blocks_nobody(config, warehouse):
    from delivery.eligibility import decide_eligibility
    from tests.test_email_stage import CUSTOMERS
    from valuemail.report import run_report

    bad = [("x" * 201, "Long Id", 40), ("bob@acme.example", "Mail Id", 50)]
    make_warehouse(warehouse, customers=[*CUSTOMERS, *((cid, name, "en", "pro", datetime(2024, 1, 1), True, tasks, "active")
                                                     for cid, name, tasks in bad)])
    warehouse.execute("UPDATE customers SET email = 'ok' || md5(customer_id) || '@example.com'")  # deliverable, one mailbox each
    decide_eligibility(warehouse, config, WEEK, now=datetime(2026, 11, 23, 6, tzinfo=timezone.utc))  # on time: its send window is open
    decisions = dict(warehouse.execute("SELECT customer_id, reason || ': ' || detail FROM eligibility").fetchall())
    assert decisions["x" * 201] == f"invalid_customer: customer id {'x' * 40}… is longer than 200 characters: " \
                                   "it cannot carry links; fix it at the source"
    assert decisions["bob@acme.example"].startswith("invalid_customer: customer id bob@acme.example contains @")
    render_period_emails(warehouse, config, WEEK)  # the preference centre's real signed links
    rendered = {r[0] for r in warehouse.execute("SELECT customer_id FROM emails").fetchall()}
    assert rendered == {cid for cid, reason in decisions.items() if reason.startswith("send")} == {c[0] for c in CUSTOMERS}
    assert re.search(r"^ +2  invalid_customer$", run_report(warehouse, config, WEEK), re.M)


@pytest.mark.slow
def test_acme_alice_and_acme_bob_each_get_their_own_message_end_to_end(tmp_path):
    """Issue #11 as reported: the whole run, from landing files to the file outbox."""
    from email import message_from_bytes, policy

    from click.testing import CliRunner

    from pipelines.cli import main
    from preference_centre.links import link_builder
    from tests.test_ingest import CUSTOMER_HEADER, EVENT_HEADER, write_csv

    people = {"acme.alice": ("Alice Archer", 40), "acme.bob": ("Bob Baker", 50), "ACME.alice": ("Carol Case", 30),
              "顧客" * 60: ("Dora Deák", 20), "a" * 190 + "1": ("Emil Ede", 11), "a" * 190 + "2": ("Fanni Fa", 12)}
    rows = [[cid, f"{name.split()[0].lower()}@acme.example", name, "en", "UTC", "pro", "HU", "2025-01-01T00:00:00Z",
             "", "", ""] for cid, (name, _) in people.items()]
    write_csv(tmp_path / "landing" / "customers.csv", CUSTOMER_HEADER, [*rows, ["x" * 201, *rows[0][1:]]])
    write_csv(tmp_path / "landing" / "events.csv", EVENT_HEADER, [
        ["", cid, f"2026-11-{17 + i % 5}T10:00:00Z", "workflow_run", str(tasks), "", "", "", ""]
        for i, (cid, (_, tasks)) in enumerate([*people.items(), ("x" * 201, ("", 9))])])
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "run", "--period", WEEK.key, "--allow-late"],
                                catch_exceptions=False)  # WEEK's send window has closed by now
    assert result.exit_code == 0, result.output
    assert "2 rows rejected" in result.output  # the 201-character id (customer + event); nobody else blocked
    emls = list((tmp_path / "outbox" / "weekly" / WEEK.key).glob("*.eml"))
    assert len(emls) == len(people)
    tokens = link_builder(load_config(home=tmp_path)).tokens
    for path in emls:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = msg.get_body(("plain",)).get_content()
        owner = next(cid for cid, (name, _) in people.items() if msg["To"].addresses[0].display_name == name)
        first = people[owner][0].split()[0]
        assert f"Hi {first}" in text or first in msg["Subject"], (owner, msg["Subject"])
        assert all(name.split()[0] not in text for cid, (name, _) in people.items() if cid != owner)
        links = re.findall(r"https://valuemail\.example/([pu])/([A-Za-z0-9_.-]+)", text + msg["List-Unsubscribe"])
        assert {kind for kind, _ in links} == {"p", "u"}
        for kind, token in links:
            assert tokens.read("preferences" if kind == "p" else "unsubscribe", token).customer_id == owner
