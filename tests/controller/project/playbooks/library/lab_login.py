#!/usr/bin/python
"""A test double: a module that forgot ``no_log`` on its password option (see forgot_no_log.yml)."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main():
    # The mistake: no no_log=True on password, so Ansible returns it in the result's invocation.
    module = AnsibleModule(argument_spec=dict(user=dict(type="str"), password=dict(type="str", no_log=False)))
    module.exit_json(changed=False, msg=f"logged in as {module.params['user']}")


if __name__ == "__main__":
    main()
