"""One definition per config key: the reader, configure's questions and options,
the sample file and the typed defaults all come from config.OPTIONS."""

from __future__ import annotations

import pytest
from clirunner import invoke

from o2cb_init import config, records
from o2cb_init.configure import configure


@pytest.mark.parametrize("option", config.OPTIONS, ids=lambda option: option.key)
def test_each_key_is_defined_once_and_used_everywhere(option: config.Option) -> None:
    defaults = config.Settings(path="x")
    assert getattr(defaults, option.field) == option.parse(option.default)
    assert f"#{option.key}={option.default}\n" in config.sample_text()
    assert f"# {option.key}: {option.description}\n" in config.sample_text()
    assert option.prompt(getattr(defaults, option.field)).endswith("]: ")
    help_text = " ".join(invoke(configure, ["--help"]).stdout.split())
    assert option.flag.split("/")[0] in help_text
    assert option.description in help_text


def test_settings_fields_are_the_options() -> None:
    fields = [f.name for f in records.fields(config.Settings) if f.name != "path"]
    assert fields == [option.field for option in config.OPTIONS]


@pytest.mark.parametrize("option", [o for o in config.OPTIONS if o.parser is None],
                         ids=lambda option: option.key)
def test_numbers_are_checked_against_the_option_limits(option: config.Option) -> None:
    assert option.parse(str(option.minimum)) == option.minimum
    assert option.parse(str(option.maximum)) == option.maximum
    for bad in (str(option.minimum - 1), str(option.maximum + 1), "9" * 5000, "-1", "1e3"):
        with pytest.raises(ValueError) as caught:
            option.parse(bad)
        assert len(str(caught.value)) < 120
