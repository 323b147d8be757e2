"""The tap-spaaza-users Tap: its one stream, settings hooks, connection test and CLI edge."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import io
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import click
from singer_sdk import Tap
from singer_sdk.helpers.capabilities import TapCapabilities
from singer_sdk.tap_base import CliTestOptionValue

from tap_spaaza_users.batch_files import check_storage, delete_delivered
from tap_spaaza_users.cli import (
    CONFIG_FILE,
    STATE_FILE,
    check_json_object,
    read_input_file,
    readable_check_logs,
)
from tap_spaaza_users.errors import SpaazaError, invalid_setting
from tap_spaaza_users.export import make_client
from tap_spaaza_users.logs import poll_metrics
from tap_spaaza_users.logs import scrub as secret_scrub
from tap_spaaza_users.sdk_hooks import HookedTap
from tap_spaaza_users.sdk_hooks.output import (
    OutputFailedError,
    closed_stdout_cause,
    stdout_is_closed,
)
from tap_spaaza_users.sdk_hooks.writer import BufferedRecordWriter
from tap_spaaza_users.settings.checks import check_settings, numbers_from_text, unknown_settings
from tap_spaaza_users.settings.required import TOKEN_PARTS, stripped_token
from tap_spaaza_users.settings.schema import CONFIG_SCHEMA
from tap_spaaza_users.settings.typed import Settings
from tap_spaaza_users.state.check import check_state
from tap_spaaza_users.streams import UsersStream

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from singer_sdk.helpers.capabilities import CapabilitiesEnum

    from tap_spaaza_users.api.client import SpaazaClient

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override


class TapSpaazaUsers(HookedTap):
    """Extracts a Spaaza chain's users (profile, RFM, loyalty and opt-ins) through export tasks."""

    name = "tap-spaaza-users"
    config_jsonschema = CONFIG_SCHEMA
    #: The SDK's capabilities, plus the connection test (``--test``) that creates no export.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [*Tap.capabilities, TapCapabilities.TEST]
    message_writer_class = BufferedRecordWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        """Create the tap, then set the level of status polls' METRIC lines (metrics_log_level)."""
        super().__init__(*args, **kwargs)
        poll_metrics.apply(str(self.config.get("metrics_log_level") or poll_metrics.INFO))

    @override
    def discover_streams(self) -> list[UsersStream]:
        """Return the tap's one stream.

        Returns:
            The users stream.
        """
        return [UsersStream(self)]

    @functools.cached_property
    def settings(self) -> Settings:
        """The settings, typed once from the checked config; the stream reads these."""
        return Settings.from_tap_config(self.config)

    @override
    def normalize_settings(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Number settings given as text as numbers; the token without surrounding spaces.

        From here on, no log line or traceback can carry either part of the token.
        """
        updates = numbers_from_text(config, self.config_jsonschema) | stripped_token(config)
        token = [{**config, **updates}.get(name) for name in TOKEN_PARTS]
        secret_scrub.install(str(part) for part in token if isinstance(part, (str, int)))
        return updates

    @override
    def check_settings(self, config: Mapping[str, Any]) -> None:
        """Warn of unknown settings, then check the settings with clear messages, before any call.

        Raises:
            SpaazaConfigError: When a setting is invalid.
        """
        schema = copy.deepcopy(self.config_jsonschema)
        type(self).append_builtin_config(schema)  # the SDK's own: stream maps, flattening, BATCH
        for name, closest in unknown_settings(config, schema):
            hint = f"; did you mean {closest!r}?" if closest else ""
            self.logger.warning("Unknown setting %r is ignored%s", name, hint)
        check_settings(config)

    @override
    def before_sync(self) -> None:
        """Prove the BATCH storage writable, and delete the BATCH files the state proves loaded.

        Both before any message and any request to Spaaza (see batch_files).
        """
        check_storage(self.config)
        stream_state = self.state.get("bookmarks", {}).get(UsersStream.name)
        if isinstance(stream_state, dict):
            delete_delivered(stream_state, self.config, self.logger)

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        """Check the input state's shape and dates before the SDK takes it in.

        Raises:
            SpaazaStateError: When the state is not one this tap wrote (or could have).
        """
        check_state(state, now=dt.datetime.now(dt.timezone.utc))
        super().load_state(state)

    def make_client(self) -> SpaazaClient:
        """A Services API client from the settings, as the stream's (close it when done)."""
        stream = self.streams["users"]
        assert isinstance(stream, UsersStream)  # noqa: S101
        return make_client(self.settings, stream.user_agent, self.logger)

    def check_connection(self) -> None:
        """Call ``GET /tasks?limit=1``: proves host and token, and the chain when it can.

        The list holds the token's own chain's tasks, so a listed task whose chain is not
        ``chain_id`` shows a token of another chain. An empty list cannot tell; then the
        first export would be refused (403) if the chain were wrong. No export is created.

        Raises:
            SpaazaConfigError: When the token belongs to another chain than ``chain_id``.
        """
        chain_id = self.settings.chain_id
        with contextlib.closing(self.make_client()) as client:
            tasks = client.list_tasks(limit=1)
        token_chain = next(
            (t["chain"] for t in tasks if isinstance(t, dict) and isinstance(t.get("chain"), int)),
            None,
        )
        if token_chain is not None and token_chain != chain_id:
            invalid_setting(
                "chain_id",
                f"is {chain_id}, but the access token lists the tasks of chain {token_chain}: "
                f"use a token of chain {chain_id} or correct chain_id",
            )
        checked = "" if token_chain is not None else " (no task yet to confirm the chain)"
        self.logger.info(
            "Connection test passed: the Services API at %s accepted the token for chain %s%s",
            client.base_url,
            chain_id,
            checked,
        )

    # CLI edge: a SpaazaError becomes one clear ERROR line and exit status 1.

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with ``--test`` described as this tap runs it."""
        command = super().get_singer_command()
        for param in command.params:
            if param.name == "test" and isinstance(param, click.Option):
                param.help = TEST_OPTION_HELP
        return command

    @classmethod
    @override
    def cb_config(cls, ctx: Any, param: Any, value: tuple[str, ...]) -> Any:
        """Read the ``--config`` files, naming one that is missing, empty or not a JSON object."""
        with cls._user_errors():
            for path in value:
                if path != "ENV":
                    check_json_object(read_input_file(path, CONFIG_FILE), CONFIG_FILE, path)
            return super().cb_config(ctx, param, value)

    @classmethod
    @override
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Run the tap, turning our errors (and an unreadable ``--state`` file) into one line."""
        with cls._user_errors():
            if stdout_is_closed():
                msg = f"The tap cannot run: {closed_stdout_cause()}."
                raise OutputFailedError(msg)
            state_file = kwargs.get("state")
            if state_file is not None:
                path = getattr(state_file, "name", "-")
                text = read_input_file(state_file, STATE_FILE)
                check_json_object(text, STATE_FILE, path)
                kwargs["state"] = io.StringIO(text)
            super().invoke(*args, **kwargs)

    @classmethod
    @override
    def cb_discover(cls, ctx: Any, param: Any, value: bool) -> None:
        """Run discovery, turning our errors into one readable line."""
        with cls._user_errors():
            super().cb_discover(ctx, param, value)

    @classmethod
    @override
    def cb_test(cls, ctx: Any, param: Any, value: str) -> None:
        """Run ``--test``: a connection check that creates no export (schema test unchanged)."""
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        config = ctx.params.get("config")
        readable_check_logs(cls.name)
        with cls._user_errors():
            tap = cls(
                config=config.config if config else None,
                parse_env_config=config.parse_env if config else False,
                validate_config=True,
                setup_mapper=False,
            )
            tap.check_connection()
        ctx.exit()

    @classmethod
    @contextlib.contextmanager
    def _user_errors(cls) -> Iterator[None]:
        """Log a SpaazaError (or a failed output) as one ERROR line and exit with status 1."""
        try:
            yield
        except (SpaazaError, OutputFailedError) as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400
            sys.exit(1)


#: What ``--help`` says of ``--test`` (the SDK's words promise a synced record).
TEST_OPTION_HELP = (
    "Use --test to check the connection without syncing: one GET /tasks?limit=1 proves "
    "api_url, the access token and, when a task is listed, chain_id; no export task is "
    "created. Use --test=schema to print the schema without syncing records."
)
