"""The project's config loader: Kedro's OmegaConfigLoader, with mistakes as one-line errors.

Kedro reports an unknown `--env` only indirectly (kedro-mlflow then falls back to a file store
that MLflow refuses, a long traceback blaming MLflow) and a YAML syntax error as a traceback of
the loader. Both are the user's to fix, so they become a `ConfigError` naming the folder or the
file, line and column, which `kedro run` prints as one `Error: ...` line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from kedro.config import OmegaConfigLoader

from fastadapt.config import ConfigError


_KEDRO_YAML_MESSAGE = re.compile(r"Invalid YAML or JSON file (.+?), unable to read line")


class ProjectConfigLoader(OmegaConfigLoader):
    """`OmegaConfigLoader` that checks the environment folder and reports bad YAML in one line."""

    def __init__(self, conf_source: str | Path, env: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(conf_source, env, *args, **kwargs)
        local_source = "://" not in str(conf_source)
        if env and env != self.default_run_env and local_source and not (Path(conf_source) / env).is_dir():
            known = sorted(p.name for p in Path(conf_source).iterdir() if p.is_dir() and not p.name.startswith("."))
            raise ConfigError(f"--env {env}: there is no folder {Path(conf_source) / env}; environments here: "
                              f"{', '.join(known)} (or create the folder)")

    def __getitem__(self, key: str) -> dict[str, Any]:
        try:
            return super().__getitem__(key)
        except yaml.YAMLError as error:
            raise ConfigError(_yaml_message(error)) from None


def _yaml_message(error: yaml.YAMLError) -> str:
    """`<file> line L, column C: invalid YAML (<problem>); ...` from the error Kedro re-raises.

    Kedro names the file in its message and keeps the parser's error (0-based line and column of
    the problem) as the cause.
    """
    named = _KEDRO_YAML_MESSAGE.match(str(error))
    where = named.group(1) if named else "a configuration file"
    cause = error.__cause__ if isinstance(error.__cause__, yaml.MarkedYAMLError) else error
    mark = getattr(cause, "problem_mark", None)
    if mark is not None:
        where += f" line {mark.line + 1}, column {mark.column + 1}"
    problem = getattr(cause, "problem", None) or "not valid YAML"
    context, context_mark = getattr(cause, "context", None), getattr(cause, "context_mark", None)
    if context and context_mark is not None:
        problem += f" {context} started at line {context_mark.line + 1}"
    return f"{where}: invalid YAML ({problem}); fix the syntax there (quote values holding ': ' or '#')"
