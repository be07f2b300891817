"""The errors a user can cause. Each message names the file, record, key or stage and what was
expected; every one derives from EcgprotoError, so stages and the CLI catch one thing and anything
else (a bug) keeps its traceback."""


class EcgprotoError(Exception):
    """Base class of every error caused by input: params, data, model files, the network."""


class ConfigError(EcgprotoError):
    """A params.yaml value (or CLI option) that is missing, unknown or out of range."""


class RecordError(EcgprotoError):
    """A record, metadata or manifest file that does not look like PTB-XL, or a path that leaves its root."""


class DownloadError(EcgprotoError):
    """A download that could not complete; the message names the file(s) and what happened."""


class ModelError(EcgprotoError):
    """A model file that cannot be used here (not ours, unsafe, or for other data)."""


class TrainingError(EcgprotoError):
    """Training that cannot go on (a non-finite loss); the message names the stage, epoch and batch."""


class GateError(EcgprotoError):
    """A metric that fails the regression gate, or cannot be read."""
