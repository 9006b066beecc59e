"""The named errors mlmon raises. Each message says what to fix."""


class MlmonError(Exception):
    """Base of every error mlmon raises on purpose."""


class ConfigError(MlmonError):
    """The models config (or a CLI argument) is invalid."""


class SourceUnavailable(MlmonError):
    """MongoDB cannot be reached or refused the query."""


class StoreError(MlmonError):
    """Postgres cannot be reached, or a write failed (the window was rolled back)."""


class ReferenceDataError(MlmonError):
    """The reference dataset is missing or does not match the config."""


class InputDataError(MlmonError):
    """A dataset given to ``mlmon.compare`` / ``mlmon check`` cannot be read or does not fit the config."""
