"""Address rules: syntax, role / no-reply addresses, excluded domains and TLDs.

The rules are computed views, not hand-kept lists (seed 003): they come from the
``[delivery]`` configuration and apply to every address at decision time, so a new rule
applies to everybody automatically.  The same rules exist twice, on purpose:

* :class:`AddressRules` in Python — for ``valuemail explain``, tests and one-off checks;
* :meth:`AddressRules.sql` — the same predicates as DuckDB SQL for the set-based
  eligibility query over a million customers.

A property test (``tests/test_eligibility_addresses.py``) checks that both agree.

Rules (all case-insensitive, on the trimmed address):

``invalid_email``
    not ``local@domain`` in plain ASCII dot-atom form: local part 1–64 characters of
    ``A-Z a-z 0-9 !#$%&'*+/=?^_`{|}~-`` in dot-separated atoms; domain of at least two
    labels (letters, digits, inner hyphens, ≤ 63 each, ≤ 253 in all) whose last label is
    alphabetic or an IDNA ``xn--`` label; at most 254 characters.  Quoted local parts,
    IP-literal domains and non-ASCII (SMTPUTF8) addresses are refused.
``role_address``
    the local part *is* one of ``delivery.role_prefixes`` or starts with one followed by
    ``.``, ``_``, ``-`` or ``+`` (``noreply@``, ``no-reply@``, ``support.team@``,
    ``hr+cv@`` …); ``anna.hr@`` and ``support2@`` are not role addresses.
``excluded_domain``
    the domain is one of ``delivery.excluded_domains`` or a subdomain of one, or ends
    with one of ``delivery.excluded_tlds`` (a TLD or public suffix such as ``gov.uk``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
#: The syntax check, RE2- and Python-compatible (DuckDB uses RE2).
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}$"
_EMAIL_RE = re.compile(EMAIL_PATTERN)
ROLE_SEPARATORS = "._-+"


def normalise(address: str | None) -> str:
    """Trimmed and lower-cased (the form every rule and the domain cap compare)."""
    return (address or "").strip().lower()


def normalised_sql(column: str) -> str:
    """The mailbox an address column names, in DuckDB SQL: trimmed and lower-cased as a whole.

    Two customers with the same normalised address share one mailbox (one e-mail per period,
    and a suppression of one applies to all).  Dots and ``+tags`` in the local part are kept:
    only some providers ignore them, so ``d.up@`` and ``dup+x@`` count as other mailboxes.
    """
    return f"lower(trim({column}))"


def split(address: str | None) -> tuple[str, str]:
    """``(local, domain)`` of a normalised address (``("", "")`` when there is no ``@``)."""
    text = normalise(address)
    local, at, domain = text.rpartition("@")
    return (local, domain) if at else ("", "")


def is_valid(address: str | None) -> bool:
    text = normalise(address)
    if not text or len(text) > 254 or not text.isascii():
        return False
    local, _, domain = text.rpartition("@")
    if len(local) > 64 or len(domain) > 253:
        return False
    return _EMAIL_RE.match(text) is not None


def _clean_list(values: Iterable[str], what: str) -> tuple[str, ...]:
    out = []
    for value in values:
        item = str(value).strip().lower().lstrip(".").rstrip("@")
        if not item or "'" in item or any(ch.isspace() for ch in item):
            raise ValueError(f"delivery.{what}: bad entry {value!r}")
        out.append(item)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class AddressRules:
    role_prefixes: tuple[str, ...] = ()
    excluded_domains: tuple[str, ...] = ()
    excluded_tlds: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, delivery: Mapping[str, object]) -> "AddressRules":
        return cls(
            role_prefixes=_clean_list(delivery.get("role_prefixes", ()), "role_prefixes"),  # type: ignore[arg-type]
            excluded_domains=_clean_list(delivery.get("excluded_domains", ()), "excluded_domains"),  # type: ignore[arg-type]
            excluded_tlds=_clean_list(delivery.get("excluded_tlds", ()), "excluded_tlds"),  # type: ignore[arg-type]
        )

    # -- Python -------------------------------------------------------------------------
    def role_prefix(self, address: str) -> str | None:
        local, _ = split(address)
        for prefix in self.role_prefixes:
            if local == prefix or (local.startswith(prefix) and local[len(prefix)] in ROLE_SEPARATORS):
                return prefix
        return None

    def excluded_by(self, address: str) -> str | None:
        _, domain = split(address)
        for excluded in self.excluded_domains:
            if domain == excluded or domain.endswith("." + excluded):
                return f"domain {excluded}"
        for tld in self.excluded_tlds:
            if domain.endswith("." + tld):
                return f"TLD .{tld}"
        return None

    def classify(self, address: str | None) -> tuple[str | None, str]:
        """``(reason, detail)``: ``invalid_email`` / ``role_address`` / ``excluded_domain``, or ``(None, "")``."""
        if not is_valid(address):
            return "invalid_email", f"{address!r} is not a deliverable e-mail address"
        prefix = self.role_prefix(address or "")
        if prefix:
            return "role_address", f"role / no-reply address ({prefix}@…)"
        excluded = self.excluded_by(address or "")
        if excluded:
            return "excluded_domain", f"excluded by rule: {excluded}"
        return None, ""

    # -- SQL ----------------------------------------------------------------------------
    def sql(self, address_expr: str) -> dict[str, str]:
        """DuckDB boolean expressions over a *normalised* address column.

        Keys: ``invalid``, ``role``, ``excluded``; plus ``local`` and ``domain`` expressions.
        Values are inlined as quoted literals (config entries are validated: no quotes).
        """
        a = address_expr
        local = f"substr({a}, 1, length({a}) - strpos(reverse({a}), '@'))"
        domain = f"substr({a}, length({a}) - strpos(reverse({a}), '@') + 2)"
        invalid = (
            f"(NOT (length({a}) BETWEEN 3 AND 254 AND strpos({a}, '@') > 0 "
            f"AND length({local}) <= 64 AND length({domain}) <= 253 "
            f"AND regexp_full_match({a}, '{EMAIL_PATTERN.replace(chr(39), chr(39) * 2)}')))"
        )
        if self.role_prefixes:
            exact = ", ".join(f"'{p}'" for p in self.role_prefixes)
            sep = "".join("\\" + ch if ch in "-.+" else ch for ch in ROLE_SEPARATORS)
            alternation = "|".join(re.escape(p).replace("'", "''") for p in self.role_prefixes)
            role = f"({local} IN ({exact}) OR regexp_matches({local}, '^({alternation})[{sep}]'))"
        else:
            role = "false"
        parts = [f"({domain} = '{d}' OR ends_with({domain}, '.{d}'))" for d in self.excluded_domains]
        parts += [f"ends_with({domain}, '.{t}')" for t in self.excluded_tlds]
        excluded = "(" + " OR ".join(parts) + ")" if parts else "false"
        return {"invalid": invalid, "role": role, "excluded": excluded, "local": local, "domain": domain}
