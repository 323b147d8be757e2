"""The settings a sync cannot start without (chain and token), and the token's two parts cleaned.

Every missing one is named in one error, so a new user fixes them all in one go; a token
part is named with its type when it is not text, never with its value.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tap_spaaza_users.errors import SpaazaConfigError, invalid_setting

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The settings without which the tap cannot run, in the order they are named.
REQUIRED = ("chain_id", "access_token_id", "access_token_secret")
TOKEN_PARTS = ("access_token_id", "access_token_secret")


def check_required(config: Any, *, loopback: bool) -> None:  # noqa: ANN401
    """Name every required setting that is missing at once; a token part must be text.

    Raises:
        SpaazaConfigError: Naming all the missing settings, or a token part of another type.
    """
    for name in TOKEN_PARTS:  # the value is a secret: only its type is named
        value = config.get(name)
        if value is not None and not isinstance(value, str):
            invalid_setting(
                name,
                f"must be text (the AccessToken's {name.rpartition('_')[2]}, quoted), not "
                f"{_type_name(value)}",
            )
        if isinstance(value, str) and any(
            c.isspace() or not c.isprintable() for c in value.strip()
        ):
            invalid_setting(
                name,
                "holds a space, line break or control character inside it: copy the "
                f"AccessToken's {name.rpartition('_')[2]} again from Spaaza Console, as one word",
            )
    missing = [
        name
        for name in REQUIRED
        if config.get(name) is None
        or (isinstance(config.get(name), str) and not config[name].strip())
    ]
    if not missing:
        return
    hints = []
    if "chain_id" in missing:
        hints.append("chain_id is the number of the Spaaza chain to export")
    if set(missing) & set(TOKEN_PARTS):
        hints.append(_where_tokens_come_from(loopback))
    if len(missing) == 1:
        invalid_setting(missing[0], f"is required: {hints[0]}")
    names = ", ".join(missing[:-1]) + f" and {missing[-1]}"
    msg = f"Settings {names} are required: {'; '.join(hints)}."
    raise SpaazaConfigError(msg)


def _type_name(value: object) -> str:
    """A JSON value's kind as a user calls it: a number, a list, an object, true or false."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def stripped_token(config: Mapping[str, Any]) -> dict[str, Any]:
    """The token's id and secret without the whitespace around them (a copied line's end).

    A value ending in a newline or carriage return (a ``.env`` line with CRLF) would make
    an invalid Authorization header.

    Args:
        config: The settings.

    Returns:
        The settings to replace.
    """
    return {
        name: value.strip()
        for name in TOKEN_PARTS
        if isinstance(value := config.get(name), str) and value != value.strip()
    }


def _where_tokens_come_from(loopback: bool) -> str:  # noqa: FBT001
    """Where to find an access token: the sandbox's demo token, or Spaaza Console."""
    if loopback:
        return (
            "api_url is a local sandbox, whose demo token spaaza-sandbox prints when it "
            "starts (and writes to its --ready-file as token_id and token_secret)"
        )
    return "copy it from the AccessToken in Spaaza Console"
