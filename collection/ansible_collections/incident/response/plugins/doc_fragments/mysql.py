# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Login options shared by every database module.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the MySQL or MariaDB server.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - TCP port of the server.
    type: int
    default: 3306
  login_user:
    description:
      - Account to log in with.
    type: str
    required: true
  login_password:
    description:
      - Password of O(login_user). Never logged or returned.
    type: str
    default: ''
  login_unix_socket:
    description:
      - Unix socket to connect through instead of TCP. Overrides O(login_host) and O(login_port).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection before failing, the server's greeting and the login included
        (a hung server accepts the TCP connection and never greets).
    type: float
    default: 5.0
requirements:
  - PyMySQL >= 1.0 on the host that runs the module.
"""
