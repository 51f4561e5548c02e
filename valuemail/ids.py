"""Customer ids: the one definition of a valid id, and the one way an id names a file.

**Valid** (:func:`id_problem`, :func:`id_invalid_sql`, :func:`id_problem_sql`): 1 to :data:`MAX_ID_LENGTH` characters
(Unicode code points, as Python's ``len`` and DuckDB's ``length`` count them), without ``@``
— the preference centre signs the id into links and stores it in a ``VARCHAR(200)`` column,
and a link must carry an opaque id, never an e-mail address.  Ingest rejects rows with any
other id, eligibility decides ``invalid_customer`` for one stored before this rule, and the
preference centre refuses one.  Both forms are built from :data:`RULES`, so they cannot drift.

**File names** (:func:`file_stem`): every per-customer file (rendered e-mail, chart PNG,
preview, ``.eml`` in the file outbox) is ``<stem><suffix>``, and distinct ids always get
distinct stems, also on case-insensitive file systems:

* an id made only of ``a-z 0-9 _ -`` and at most 60 characters is its own stem (``c-anna``),
  unless it ends like a hashed stem;
* any other id becomes a readable prefix (lower-cased, other characters as ``_``, at most 40)
  plus ``-`` and the first 16 hex digits of the sha256 of the exact id
  (``acme.alice`` → ``acme_alice-a86fbdf7ccd9b9b3``, ``王芳`` → ``__-8ac9540bf3a5f9df``).

Stems are ASCII, at most 60 bytes (far below the 255-byte file-name limit) and contain no
``.``, so ``<stem>.html`` / ``<stem>.mobile.png`` never collide across customers.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Final, NamedTuple

MAX_ID_LENGTH: Final = 200
_PLAIN = re.compile(r"[a-z0-9_-]{1,60}")
_HASHED = re.compile(r".*-[0-9a-f]{16}")
_OTHER = re.compile(r"[^a-z0-9_-]")


class Rule(NamedTuple):
    broken: Callable[[str], bool]  # the Python check
    sql: str                       # the same check in DuckDB SQL; ``{x}`` is the id expression
    problem: str                   # what is wrong, completing "customer id … " (no quotes: also SQL)


RULES: Final[tuple[Rule, ...]] = (
    Rule(lambda s: not s, "strlen({x}) = 0", "is empty"),
    # strlen (bytes, O(1)) first: only ids of more than 200 bytes have their characters counted
    Rule(lambda s: len(s) > MAX_ID_LENGTH, f"strlen({{x}}) > {MAX_ID_LENGTH} AND length({{x}}) > {MAX_ID_LENGTH}",
         f"is longer than {MAX_ID_LENGTH} characters"),
    Rule(lambda s: "@" in s, "contains({x}, '@')", "contains @ (looks like an email address; ids must be opaque)"),
)


def id_problem(customer_id: str) -> str | None:
    """What makes ``customer_id`` invalid (``"is empty"``, …), or ``None`` for a valid id."""
    return next((rule.problem for rule in RULES if rule.broken(customer_id)), None)


def id_invalid_sql(expr: str) -> str:
    """A DuckDB condition: the (non-NULL) VARCHAR ``expr`` is not a valid id (cheaper than the problem)."""
    return "(" + " OR ".join(f"({rule.sql.format(x=expr)})" for rule in RULES) + ")"


def id_problem_sql(expr: str) -> str:
    """A DuckDB expression: :func:`id_problem` of the (non-NULL) VARCHAR ``expr``, NULL when valid."""
    whens = " ".join(f"WHEN {rule.sql.format(x=expr)} THEN '{rule.problem}'" for rule in RULES)
    return f"CASE {whens} END"


def file_stem(customer_id: str) -> str:
    """The file-name stem of a customer's files; injective, case-insensitive safe, ASCII, no dots."""
    if _PLAIN.fullmatch(customer_id) and not _HASHED.fullmatch(customer_id):
        return customer_id
    readable = _OTHER.sub("_", customer_id.lower())[:40]
    return f"{readable}-{hashlib.sha256(customer_id.encode('utf-8')).hexdigest()[:16]}"
