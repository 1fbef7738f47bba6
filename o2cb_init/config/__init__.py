"""The sysconfig file: one schema, a strict reader, a line-preserving writer.

- schema.py: every key defined once (parser, default, limits, question, help)
  and the typed Settings;
- protected.py: reading a file that root trusts (owner, mode, text only);
- sysconfig.py: locating and reading the file (configobj for the values);
- writer.py: line-preserving, atomic writes and the sample file.

The names below are the package's interface for the rest of o2cb.
"""

from __future__ import annotations

from .protected import check_protection, decode_text, read_protected, strict_modes
from .schema import (
    CLUSTER_NAME_MAX,
    CLUSTER_NAME_RULE,
    KEYS,
    OPTION_BY_FIELD,
    OPTION_BY_KEY,
    OPTIONS,
    STACKS,
    VALUE_MAX,
    Option,
    Settings,
    bounded_int,
    check_keepalive,
    format_value,
    parse_cluster,
    parse_enabled,
    parse_number,
    parse_stack,
    parse_value,
    settings_from,
    valid_cluster_name,
)
from .sysconfig import (
    DEFAULT_PATH,
    MISSING_HINT,
    SYSCONFIG_PATH,
    ConfigFile,
    Entry,
    current,
    load,
    locate,
    read,
)
from .writer import (
    WRITE_TITLE,
    new_document,
    sample_text,
    save,
    save_reported,
    set_enabled,
    set_value,
    text_of,
    update,
    write,
)

__all__ = [
    "CLUSTER_NAME_MAX", "CLUSTER_NAME_RULE", "DEFAULT_PATH", "KEYS", "MISSING_HINT",
    "OPTIONS", "OPTION_BY_FIELD", "OPTION_BY_KEY", "STACKS", "SYSCONFIG_PATH", "VALUE_MAX",
    "WRITE_TITLE", "ConfigFile", "Entry", "Option", "Settings", "bounded_int",
    "check_keepalive", "check_protection", "current", "decode_text", "format_value", "load",
    "locate", "new_document", "parse_cluster", "parse_enabled", "parse_number", "parse_stack",
    "parse_value", "read", "read_protected", "sample_text", "save", "save_reported",
    "set_enabled", "set_value", "settings_from", "strict_modes", "text_of", "update",
    "valid_cluster_name", "write",
]
