"""What incidentctl changes in the ansible-playbook process it runs (supervise.run_here), before Ansible starts.

Ansible parses its builtin routing (``ansible_builtin_runtime.yml``, 370 kB of YAML: 60 ms) and each
collection's ``meta/runtime.yml`` at the start of every run. ansible-core lets a tool replace the parser
(``_collection_finder._meta_yml_to_dict``, which receives an id "to allow other implementations to cache the
output"): here its answer is kept in incidentctl's cache, keyed by the digest of the YAML itself, so an edited
file is parsed again. The parser loads every scalar as a string, so the JSON of the cache gives back exactly
what it returned. An optimisation only: when anything here fails, Ansible parses as it always does.
"""

from __future__ import annotations

import hashlib


def install() -> None:
    from ansible.utils.collection_loader import _collection_finder

    from . import cache

    parse = _collection_finder._meta_yml_to_dict
    if parse is None or getattr(parse, "incidentctl_cached", False):
        return

    def cached_parse(data, content_id):
        raw = data.encode() if isinstance(data, str) else bytes(data)
        key = hashlib.sha256(raw).hexdigest()[:32]
        return cache.cached("ansible-routing", key, lambda: parse(data, content_id), lambda doc: isinstance(doc, dict))

    cached_parse.incidentctl_cached = True
    cached_parse.__wrapped__ = parse
    _collection_finder._meta_yml_to_dict = cached_parse
