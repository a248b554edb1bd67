"""Ansible strategy plugins of incidentctl: this directory goes on ANSIBLE_STRATEGY_PLUGINS (supervise.mitogen_env)."""
