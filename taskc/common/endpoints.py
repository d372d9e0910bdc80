"""Rules about endpoints: which ones are on this machine."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) names this machine
    only: what a server may bind to without being reachable from elsewhere."""
    import ipaddress

    host = host.strip().lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local(url: str | None) -> bool:
    """True for an endpoint on this machine (loopback, or 0.0.0.0 as a destination): an API key
    is optional there, nothing is billed per token, and answers cost nothing to resend."""
    if not url:
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host == "0.0.0.0" or is_loopback_host(host)


_SECRET_PARAM = ("key", "token", "secret", "password", "passwd", "pwd", "signature", "sig", "auth", "credential")


def _secret_name(name: str) -> bool:
    """Whether a query parameter's name says its value is a credential."""
    return any(word in name.lower() for word in _SECRET_PARAM)


def has_credentials(url: str | None) -> bool:
    """True when `url` carries a user name or password (`https://user:pw@host/...`)."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def redact_url(url: str | None) -> str | None:
    """`url` as it may be written to a file or printed: `user:pw@` becomes `[REDACTED]@` and the
    value of every query parameter whose name suggests a credential (`key`, `api_key`, `token`,
    `sig`, ...) becomes `[REDACTED]`; everything else is kept as it was."""
    if not url:
        return url
    from urllib.parse import parse_qsl, urlencode, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "[REDACTED URL]"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "[REDACTED]@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_name(name) for name, _ in pairs):  # else the query is left as written
            query = urlencode([(name, "[REDACTED]" if _secret_name(name) else value) for name, value in pairs],
                              safe="[]")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credential values inside `url` (password, secret query values), to scrub from errors."""
    if not url:
        return ()
    from urllib.parse import parse_qsl

    try:
        parts = urlsplit(url)
    except ValueError:
        return (url,)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if v and _secret_name(k)]
    return tuple(found)


def join_url(base_url: str, path: str) -> str:
    """`base_url` + `path`, keeping a query string of the base at the end
    (`https://h/v1?key=K` + `/chat/completions` -> `https://h/v1/chat/completions?key=K`)."""
    from urllib.parse import urlunsplit

    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, parts.fragment))
