# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which replica to promote when a primary is lost, and which transactions each replica holds alone.

Pure functions of normalised server states (the ``servers`` of mysql_replication_info, or what
mysql_promote reads): the db_failover_plan filter chooses with them, and mysql_promote's gate
checks the same things again on the live servers just before it promotes.

* **Errant transactions** - written on a replica itself rather than received from its source: its
  own writes (its server id on MariaDB, its server_uuid on MySQL) that neither the old primary (when
  it answers) nor any sibling has. On MariaDB with ``gtid_strict_mode`` a write of its own whose
  sequence number the source has gone past (the replica received a later one of that domain) is part
  of the source's history, so that comparison also works with nobody left to compare with.
* **Position after applying** - what a replica will have once it applied everything it received:
  MariaDB the furthest of ``gtid_slave_pos`` and the received position per domain, MySQL
  ``gtid_executed`` and the received set, less its errant transactions.
* **Choice** (orchestrator's order) - exclude the replicas that cannot or must not be promoted
  (unreachable, not a replica of the lost primary, an SQL error, a configured delay, no GTID, a major
  version its siblings could not replicate from or the inventory does not allow, errant transactions,
  promotion rule ``never``); among the others the one that will have everything every other will have
  wins; equal positions go by promotion rule (``prefer`` over ``neutral`` over ``avoid``), then by name.
"""

from __future__ import annotations

from ansible_collections.incident.response.plugins.module_utils.mysql_flavors import (
    MARIADB,
    format_mysql_gtid_set,
    gtid_missing,
    mariadb_position_max,
    mysql_set_subtract,
    mysql_set_union,
    parse_binlog_state,
    parse_mariadb_gtid,
    parse_version,
)

RULES = ("prefer", "neutral", "avoid", "never")
RULE_ORDER = {"prefer": 0, "neutral": 1, "avoid": 2}


def flavor_name(state):
    return ((state or {}).get("server") or {}).get("flavor") or MARIADB


def major_version(state):
    """'10.11' / '8.0' from the server's version text, or None."""
    text = ((state or {}).get("server") or {}).get("version")
    try:
        return ".".join(str(p) for p in parse_version(text)[:2]) if text else None
    except ValueError:
        return None


def _major_tuple(text):
    return tuple(int(p) for p in text.split(".")) if text else None


def gtid_known(state):
    """Whether the state says anything about GTIDs (minimal states from other tools may not)."""
    return bool((state or {}).get("gtid"))


def has_gtid(state):
    gtid = (state or {}).get("gtid") or {}
    return bool(gtid.get("enabled") and gtid.get("executed"))


def _rep(state):
    return (state or {}).get("replication") or {}


# -- errant transactions ----------------------------------------------------------------------------------
def errant(state, references):
    """Transactions written on this server alone.

    ``references``: states of the servers that should have everything legitimate (the old primary when it
    answers, the siblings). Returns ``dict(gtids=[...], count=int or None, checked=bool, detail=str)``;
    ``gtids`` names them (MariaDB: the last GTID of each domain this server wrote; MySQL: the GTID set).
    """
    references = [r for r in references or [] if r and has_gtid(r)]
    if not has_gtid(state):
        return dict(gtids=[], count=0, checked=False, detail="no GTID position: nothing to compare")
    if flavor_name(state) == MARIADB:
        return _errant_mariadb(state, references)
    return _errant_mysql(state, references)


def _errant_mariadb(state, references):
    gtid = state["gtid"]
    own = (state.get("server") or {}).get("server_id")
    mine = {
        key: seq
        for key, seq in parse_binlog_state(gtid.get("binlog_state") or gtid.get("binlog_pos")).items()
        if key[1] == own
    }
    strict = bool(gtid.get("strict_mode"))
    received = parse_mariadb_gtid(_rep(state).get("gtid_received"))
    refs = [parse_binlog_state(r["gtid"].get("binlog_state") or r["gtid"].get("binlog_pos")) for r in references]
    found = []
    for (domain, server), seq in sorted(mine.items()):
        if any(ref.get((domain, server), 0) >= seq for ref in refs):
            continue
        if strict and received.get(domain, 0) >= seq:
            continue  # the source went past it: under strict mode its history holds this sequence number
        found.append(f"{domain}-{server}-{seq}")
    checked = bool(references) or strict
    if found:
        return dict(
            gtids=found,
            count=None,
            checked=True,
            detail=f"written here and on no other server: {', '.join(found)} (the last of each domain)",
        )
    if not checked:
        return dict(gtids=[], count=0, checked=False, detail="nothing to compare with (no sibling, old primary down)")
    return dict(gtids=[], count=0, checked=True, detail="none: every transaction written here is on another server")


def _errant_mysql(state, references):
    uuid = ((state.get("server") or {}).get("server_uuid") or "").lower()
    executed = mysql_set_union(state["gtid"]["executed"])
    mine = {key: iv for key, iv in executed.items() if key[0] == uuid}
    if not references:
        return dict(gtids=[], count=0, checked=False, detail="nothing to compare with (no sibling, old primary down)")
    others = mysql_set_union(
        *[r["gtid"]["executed"] for r in references], *[_rep(r).get("gtid_received") for r in references]
    )
    left = mysql_set_subtract(mine, others)
    if not left:
        return dict(gtids=[], count=0, checked=True, detail="none: every transaction written here is on another server")
    text = format_mysql_gtid_set(left)
    count = sum(end - start + 1 for iv in left.values() for start, end in iv)
    return dict(gtids=[text], count=count, checked=True, detail=f"{count} written here and on no other server: {text}")


# -- positions --------------------------------------------------------------------------------------------
def will_have(state, errant_found=None):
    """The GTIDs the server will have applied once it applied what it received (its errant ones left out)."""
    gtid = (state or {}).get("gtid") or {}
    rep = _rep(state)
    if flavor_name(state) == MARIADB:
        return mariadb_position_max(gtid.get("slave_pos"), rep.get("gtid_received")) or gtid.get("executed") or ""
    have = mysql_set_union(gtid.get("executed"), rep.get("gtid_received"))
    for text in (errant_found or {}).get("gtids") or []:
        have = mysql_set_subtract(have, mysql_set_union(text))
    return format_mysql_gtid_set(have)


def missing(state, have, want):
    """How many transactions of position ``want`` position ``have`` lacks."""
    return gtid_missing(flavor_name(state), have or "", want or "")


# -- the choice -------------------------------------------------------------------------------------------
def rule_of(databases, name):
    rule = str(((databases or {}).get(name) or {}).get("promotion_rule") or "neutral").lower()
    return rule if rule in RULES else "neutral"


def choose(servers, replicas, old_primary=None, databases=None, versions=None):
    """Choose the replica to promote among ``replicas`` (names of the lost primary's replicas).

    ``servers``: name -> state (``reachable`` false for a server that did not answer); ``old_primary``:
    its name (its state counts as a reference when it answers); ``databases``: the inventory's map (for
    ``promotion_rule``); ``versions``: major versions the cluster allows (None: any).

    Returns dict(promote, candidates (ranked, best first), excluded ([{name, reasons}]), siblings (the
    reachable replicas that are to follow the new one), errant ({name: finding}), positions, loses, reason).
    """
    states = {name: (servers or {}).get(name) or {} for name in replicas}
    reachable = [n for n in replicas if states[n].get("reachable")]
    old = (servers or {}).get(old_primary) or {} if old_primary else {}
    old_refs = [old] if old.get("reachable") else []
    errants, positions, excluded, eligible = {}, {}, [], []
    for name in reachable:
        refs = old_refs + [states[o] for o in reachable if o != name]
        errants[name] = errant(states[name], refs)
        positions[name] = will_have(states[name], errants[name])
    majors = {n: major_version(states[n]) for n in reachable}
    for name in replicas:
        st = states[name]
        reasons = []
        if not st.get("reachable"):
            excluded.append(dict(name=name, reasons=[f"unreachable ({st.get('error') or 'no answer'})"]))
            continue
        rep = _rep(st)
        sql_err = rep.get("last_sql_error")
        if sql_err:
            reasons.append(f"its SQL thread stopped on error {sql_err.get('errno')}: {sql_err.get('message')}")
        if rep.get("sql_delay"):
            reasons.append(
                f"delayed by {rep['sql_delay']} s on purpose (MASTER_DELAY): a copy of the past, not a primary"
            )
        if gtid_known(st) and not has_gtid(st):
            reasons.append("no GTID position: its siblings could not be re-pointed to it")
        mine = _major_tuple(majors[name])
        older = sorted(
            {majors[o] for o in reachable if o != name and majors[o] and mine and _major_tuple(majors[o]) < mine}
        )
        if older:
            reasons.append(
                f"runs {majors[name]}, newer than {', '.join(older)} on its siblings: they could not replicate from it"
            )
        if versions and majors[name] and majors[name] not in [str(v) for v in versions]:
            reasons.append(
                f"runs {majors[name]}, not one of the versions allowed ({', '.join(str(v) for v in versions)})"
            )
        if errants[name]["gtids"]:
            reasons.append(f"errant transactions: {errants[name]['detail']}")
        rule = rule_of(databases, name)
        if rule == "never":
            reasons.append("promotion rule never")
        if reasons:
            excluded.append(dict(name=name, reasons=reasons))
        else:
            eligible.append(name)
    out = dict(
        promote=None, candidates=[], excluded=excluded, siblings=[], errant=errants, positions=positions, loses=[]
    )
    if not eligible:
        why = "; ".join(f"{e['name']}: {', '.join(e['reasons'])}" for e in excluded) or "no replica"
        return dict(out, reason=f"no replica can be promoted ({why})")

    comparable = all(gtid_known(states[n]) for n in eligible)
    if len(eligible) > 1 and not comparable:
        return dict(
            out,
            reason=f"several replicas could be promoted ({', '.join(eligible)}) and their GTID positions are "
            "unknown: choose one by hand",
        )

    def behind(name, others):
        return {o: missing(states[name], positions[name], positions[o]) for o in others if o != name}

    ranked = []
    for name in eligible:
        lacks = behind(name, eligible) if comparable else {}
        ranked.append(
            dict(
                name=name,
                rule=rule_of(databases, name),
                position=positions.get(name),
                region=((databases or {}).get(name) or {}).get("region"),
                lacks={o: n for o, n in lacks.items() if n},
            )
        )
    most = [c for c in ranked if not c["lacks"]]
    ranked.sort(key=lambda c: (sum(c["lacks"].values()), RULE_ORDER[c["rule"]], c["name"]))
    out["candidates"] = ranked
    if not most:
        detail = "; ".join(
            f"{c['name']} lacks {', '.join(f'{n} of {o}' for o, n in c['lacks'].items())}" for c in ranked
        )
        return dict(
            out, reason=f"the candidates diverge, none has everything the others have ({detail}): choose by hand"
        )
    best = min(most, key=lambda c: (RULE_ORDER[c["rule"]], c["name"]))
    chosen = best["name"]
    # What some reachable replica (an excluded one too) holds and the chosen one will not: lost by promoting it.
    siblings = [n for n in reachable if n != chosen]
    if comparable:
        for other in siblings:
            n = missing(states[chosen], positions[chosen], positions[other])
            if n:
                out["loses"].append(dict(name=other, transactions=n, position=positions[other]))
    ties = [c["name"] for c in most if c["name"] != chosen]
    others = [c for c in ranked if c["name"] != chosen]
    why = [
        f"{chosen} will have every transaction any other candidate has ({positions.get(chosen) or 'position unknown'})"
    ]
    if ties:
        why.append(f"as much as {', '.join(ties)}; promotion rule {best['rule']} and then the name decide")
    for c in others:
        if c["lacks"].get(chosen):
            why.append(f"{c['name']} ({c['rule']}) lacks {c['lacks'][chosen]} of its transactions")
    for e in excluded:
        why.append(f"{e['name']} excluded: {', '.join(e['reasons'])}")
    if out["loses"]:
        held = ", ".join(f"{lost['name']} has {lost['transactions']} transaction(s) it lacks" for lost in out["loses"])
        return dict(
            out,
            reason=f"{chosen} would be the candidate, but {held}: promoting it would lose them ({'; '.join(why[1:])}); "
            "choose by hand (make it catch up from that server first, or accept the loss with mysql_promote force)",
        )
    return dict(out, promote=chosen, siblings=siblings, reason="; ".join(why))
