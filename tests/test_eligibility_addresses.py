"""Address rules: the Python rules (explain, checks) and the SQL rules (eligibility) agree on every address."""

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.addresses import AddressRules, is_valid

RULES = AddressRules(
    role_prefixes=("noreply", "no-reply", "hr", "jobs", "support", "customerservice", "marketing", "info"),
    excluded_domains=("example.invalid", "competitor.example"),
    excluded_tlds=("gov", "mil", "gov.uk"),
)


_CON = duckdb.connect()
_SQL = RULES.sql("addr")


def _sql_classify(addresses: list[str]) -> list[str | None]:
    rows = _CON.execute(f"""
        SELECT CASE WHEN {_SQL['invalid']} THEN 'invalid_email' WHEN {_SQL['role']} THEN 'role_address'
                    WHEN {_SQL['excluded']} THEN 'excluded_domain' END
        FROM (SELECT i, lower(trim(raw)) AS addr FROM (SELECT unnest(range(len($a))) AS i, unnest($a) AS raw))
        ORDER BY i""", {"a": addresses}).fetchall()
    return [r[0] for r in rows]


CASES = {
    "anna@acme.example": None,
    "Anna.Kovacs@Acme.Example": None,
    " anna@acme.example ": None,
    "noreply@acme.example": "role_address",
    "no-reply@acme.example": "role_address",
    "NoReply@acme.example": "role_address",
    "support.team@acme.example": "role_address",
    "hr+cv@acme.example": "role_address",
    "hrmanager@acme.example": None,          # not a role: no separator after the prefix
    "anna.hr@acme.example": None,
    "support2@acme.example": None,
    "x@example.invalid": "excluded_domain",
    "x@mail.competitor.example": "excluded_domain",
    "x@notcompetitor.example": None,
    "x@agency.gov": "excluded_domain",
    "x@hmrc.gov.uk": "excluded_domain",
    "x@gov.example": None,
    "plainaddress": "invalid_email",
    "a@b": "invalid_email",
    "a@@b.com": "invalid_email",
    "a..b@acme.example": "invalid_email",
    ".a@acme.example": "invalid_email",
    "a@-acme.example": "invalid_email",
    "a@acme.e": "invalid_email",
    "anna@xn--bcher-kva.example": None,
    "anna@bücher.example": "invalid_email",  # non-ASCII needs SMTPUTF8 / IDNA: refused
    "\"quoted\"@acme.example": "invalid_email",
    "": "invalid_email",
    ("x" * 65) + "@acme.example": "invalid_email",
}


@pytest.mark.parametrize("address,expected", list(CASES.items()))
def test_examples(address, expected):
    assert RULES.classify(address)[0] == expected


def test_sql_agrees_on_the_examples():
    assert _sql_classify(list(CASES)) == list(CASES.values())


_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789.-_+'!#%", min_size=0, max_size=70)
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=0, max_size=12)
_domain = st.lists(_label, min_size=1, max_size=4).map(".".join) | st.sampled_from(
    ["gov", "agency.gov", "example.invalid", "x.competitor.example", "gov.uk", "a.gov.uk", "acme.example", "ünï.example"])
_prefix = st.sampled_from(["", "noreply", "no-reply", "hr", "support", "info"]) 
_address = st.builds(lambda p, s, l, at, d: f"{p}{s}{l}{at}{d}", _prefix, st.sampled_from(["", ".", "+", "-", "_"]),
                     _local, st.sampled_from(["@", "@", "@@", ""]), _domain)


@settings(max_examples=200, deadline=None)
@given(st.lists(_address, min_size=1, max_size=30))
def test_python_and_sql_rules_agree(addresses):
    assert _sql_classify(addresses) == [RULES.classify(a)[0] for a in addresses]


def test_is_valid_length_limits():
    assert is_valid("a@" + ".".join(["abcdefghij"] * 20) + ".com") is True
    assert is_valid("a@" + ".".join(["abcdefghij"] * 24) + ".com") is False  # domain > 253
