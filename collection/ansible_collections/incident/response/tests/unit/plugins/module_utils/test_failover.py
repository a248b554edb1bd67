"""Failover helpers: regions, the upstream file and its region, body templates."""

from __future__ import annotations

import pytest

from ansible_collections.incident.response.plugins.module_utils import failover
from ansible_collections.incident.response.plugins.module_utils.common import ModuleFailure

REGIONS = failover.normalize_regions(
    {
        "primary": {"servers": ["10.0.1.10:80", "10.0.1.11:80 max_fails=3"], "health_url": "http://10.0.1.10/h"},
        "secondary": ["10.0.2.10:80"],
    }
)


def test_regions_accept_the_inventory_shapes():
    assert REGIONS == {
        "primary": {"servers": ["10.0.1.10:80", "10.0.1.11:80 max_fails=3"], "health_urls": ["http://10.0.1.10/h"]},
        "secondary": {"servers": ["10.0.2.10:80"], "health_urls": []},
    }


@pytest.mark.parametrize("server", ["10.0.0.1:80; include /etc/passwd", "a {", "", "x\nserver y"])
def test_servers_cannot_inject_configuration(server):
    with pytest.raises(ModuleFailure, match="host:port"):
        failover.normalize_regions({"r": {"servers": [server]}})


def test_rendered_file_is_marked_and_read_back():
    text = failover.render_upstream(
        "global_backend", "primary", REGIONS["primary"]["servers"], ["keepalive 16"], "/x.previous"
    )
    assert text == (
        "# Managed by incident.response.traffic_failover: region=primary\n"
        "# Written by the module; the file it replaced is kept in /x.previous for rollback.\n"
        "upstream global_backend {\n"
        "    server 10.0.1.10:80;\n"
        "    server 10.0.1.11:80 max_fails=3;\n"
        "    keepalive 16;\n"
        "}\n"
    )
    assert failover.current_region(text, "global_backend", REGIONS) == "primary"
    with pytest.raises(ModuleFailure, match="without braces"):
        failover.render_upstream("b", "primary", ["a:1"], ["keepalive 16; }"])


def test_files_of_two_switches_to_the_same_region_are_the_same_upstream():
    servers = REGIONS["primary"]["servers"]
    one = failover.render_upstream("global_backend", "primary", servers, [], "/inc-1/global-upstream.previous")
    two = failover.render_upstream("global_backend", "primary", servers, [], "/inc-2/global-upstream.previous")
    assert one != two and failover.same_upstream(one, two)
    other = failover.render_upstream("global_backend", "secondary", REGIONS["secondary"]["servers"])
    assert not failover.same_upstream(one, other)
    assert not failover.same_upstream(one, None) and failover.same_upstream(None, None)


def test_a_hand_written_file_is_recognised_by_its_servers():
    text = """
    # the global entry point
    upstream other { server 10.0.2.10:80; }
    upstream global_backend {
        server 10.0.1.11:80 max_fails=3;   # second
        server   10.0.1.10:80;
        # server 10.0.2.10:80;
    }
    """
    assert failover.upstream_servers(text, "global_backend") == ["10.0.1.11:80", "10.0.1.10:80"]
    assert failover.current_region(text, "global_backend", REGIONS) == "primary"
    assert failover.current_region(text, "other", REGIONS) == "secondary"
    assert failover.current_region("upstream global_backend { server 1.2.3.4:80; }", "global_backend", REGIONS) is None
    assert failover.current_region(None, "global_backend", REGIONS) is None


def test_body_templates_and_status_paths():
    body = {"region": "${to_region}", "why": ["from ${from_region}", 3], "keep": "$$literal ${unknown}"}
    assert failover.substitute(body, {"to_region": "b", "from_region": "a"}) == {
        "region": "b",
        "why": ["from a", 3],
        "keep": "$literal ${unknown}",
    }
    data = {"active": {"region": "a"}, "pools": [{"region": "b"}]}
    assert failover.dig(data, "active.region") == "a"
    assert failover.dig(data, "pools.0.region") == "b"
    assert failover.dig(data, "active.missing") is None


def test_nginx_command_line():
    p = {"nginx_binary": "nginx", "nginx_prefix": None, "nginx_config": "/c.conf", "nginx_error_log": "/e.log"}
    assert failover.nginx_cmd(p, "-t", "-q") == ["nginx", "-c", "/c.conf", "-e", "/e.log", "-t", "-q"]
