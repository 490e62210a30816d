"""Credentials for one Confluence site, which never show up in a repr, log or message.

Cloud: an Atlassian account email + API token, sent as HTTP Basic. Data Center: a personal
access token, sent as Bearer. The kind of credential also tells the client the flavour of the
site (Cloud serves its API under ``/wiki``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from pydantic import SecretStr

from confluence_rag.confluence.models import Flavour
from confluence_rag.errors import InvalidInput


@dataclass(frozen=True, slots=True, repr=False)
class SiteAuth:
    """Build with :meth:`cloud` or :meth:`datacenter`; ``repr`` shows who, never the secret."""

    flavour: Flavour
    email: str | None
    _secret: SecretStr = field(compare=False)

    @classmethod
    def cloud(cls, email: str, api_token: str | SecretStr) -> SiteAuth:
        """Confluence Cloud: the Atlassian account email and an API token."""
        email = (email or "").strip()
        if not email:
            raise InvalidInput("Confluence Cloud needs the account email that owns the API token")
        secret = api_token if isinstance(api_token, SecretStr) else SecretStr(api_token or "")
        if not secret.get_secret_value().strip():
            raise InvalidInput("Confluence Cloud needs an API token (it was empty)")
        return cls(flavour="cloud", email=email, _secret=secret)

    @classmethod
    def datacenter(cls, personal_access_token: str | SecretStr) -> SiteAuth:
        """Confluence Data Center / Server: a personal access token."""
        token = personal_access_token
        secret = token if isinstance(token, SecretStr) else SecretStr(token or "")
        if not secret.get_secret_value().strip():
            raise InvalidInput(
                "Confluence Data Center needs a personal access token (it was empty)"
            )
        return cls(flavour="datacenter", email=None, _secret=secret)

    @property
    def identity(self) -> str:
        """Who these credentials are, for messages: the email, or "a personal access token"."""
        return self.email if self.email else "a personal access token"

    @property
    def hint(self) -> str:
        """What to check when the site rejects these credentials."""
        if self.flavour == "cloud":
            return "check the email and API token (Cloud)"
        return "check the personal access token (Data Center) and that it has not expired"

    def header(self) -> str:
        """The ``Authorization`` header value. Only the HTTP layer calls this."""
        secret = self._secret.get_secret_value()
        if self.flavour == "cloud":
            raw = f"{self.email}:{secret}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return f"Bearer {secret}"

    def secrets(self) -> tuple[str, ...]:
        """Every form of the secret that could leak (raw and as sent), for redaction checks."""
        return (self._secret.get_secret_value(), self.header())

    def __repr__(self) -> str:
        if self.flavour == "cloud":
            return f"SiteAuth.cloud(email={self.email!r}, api_token='**********')"
        return "SiteAuth.datacenter(personal_access_token='**********')"

    __str__ = __repr__
