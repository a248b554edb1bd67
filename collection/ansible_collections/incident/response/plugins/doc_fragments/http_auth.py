# Copyright: (c) 2026, Incident Response Engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Authentication and TLS options of modules that call one HTTP API (Prometheus, a traffic manager).
    DOCUMENTATION = r"""
options:
  bearer_token:
    description:
      - "Token sent as C(Authorization: Bearer <token>). Never logged or returned."
      - Mutually exclusive with O(url_username).
    type: str
  url_username:
    description:
      - User name for HTTP basic authentication, sent with every request.
      - Requires O(url_password).
    type: str
  url_password:
    description:
      - Password for HTTP basic authentication. Never logged or returned.
    type: str
  validate_certs:
    description:
      - Verify the server's TLS certificate. Only set to V(false) for a lab or a self-signed test system.
    type: bool
    default: true
"""
