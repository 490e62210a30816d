"""CQL building: quoting that cannot be escaped from, space-key validation, date windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from confluence_rag.confluence import cql
from confluence_rag.emulator.cql import parse as emulator_parse
from confluence_rag.emulator.cql import tokenize
from confluence_rag.errors import ConfigurationError, InvalidInput


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("DEV", '"DEV"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ('A" OR space = "B', '"A\\" OR space = \\"B"'),
        ('trailing\\"', '"trailing\\\\\\""'),
        ("", '""'),
        ("ünïcødé label", '"ünïcødé label"'),
    ],
)
def test_quote_escapes_backslashes_and_quotes(value: str, quoted: str) -> None:
    assert cql.quote(value) == quoted


@pytest.mark.parametrize(
    "value",
    ['A" OR space = "B', 'x\\" OR 1=1 --', '"', "\\", 'a\\\\"b', "it's", 'ORDER BY "x"'],
)
def test_a_quoted_value_is_one_string_token_to_a_real_cql_tokenizer(value: str) -> None:
    # The emulator's tokenizer reads escapes as Confluence does: whatever the value, it must
    # come back as exactly one string token holding the original text.
    tokens = [token for token in tokenize(cql.quote(value)) if token.kind != "eof"]
    assert [(token.kind, token.text) for token in tokens] == [("string", value)]


@pytest.mark.parametrize("value", ["a\nb", "tab\there", "nul\x00", "bell\x07"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        cql.quote(value)


@pytest.mark.parametrize(
    "key",
    [
        "DEV",
        "ds",
        "A1",
        "~jdoe",
        "~5fc9e78d2730d800760becc4",
        "~557058:3a7c8f0e-1b2c-4d5e-8f90-123456789abc",
        "~j.doe@corp",
    ],
)
def test_valid_space_keys(key: str) -> None:
    assert cql.validate_space_key(key) == key


@pytest.mark.parametrize(
    "key",
    ['A" OR space = "B', "", " DEV", "DEV ", "DE V", "DEV)", "~", "~a b", "DEV;", "ÄÖÜ", "a" * 256],
)
def test_invalid_space_keys_are_rejected_before_any_query(key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        cql.content_cql(key)
    assert "space key" in caught.value.message


def test_content_cql_shape() -> None:
    query = cql.content_cql("DEV")
    assert query == 'space = "DEV" AND type IN ("page", "blogpost") ORDER BY created ASC'
    assert cql.content_cql(["DEV", "OPS"], types=["blogpost"], order_by=None) == (
        'space IN ("DEV", "OPS") AND type = "blogpost"'
    )


def test_labels_with_quotes_are_quoted_and_parse_as_one_label() -> None:
    query = cql.content_cql("DEV", labels=["how-to", 'evil" OR space = "SECRET'])
    assert 'label IN ("how-to", "evil\\" OR space = \\"SECRET")' in query
    parsed = emulator_parse(query)  # a real parser: still one AND of three clauses
    assert "SECRET" not in {token.text for token in tokenize(query) if token.kind == "word"}
    assert parsed is not None


@pytest.mark.parametrize("types", [("page", "comment"), ("attachment",), ()])
def test_unknown_types_are_rejected(types: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput):
        cql.content_cql("DEV", types=types)


def test_types_are_deduplicated_in_order() -> None:
    assert cql.validate_types(["blogpost", "page", "blogpost"]) == ("blogpost", "page")


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # 07:30 UTC is 23:30 the evening before in Los Angeles (PST, UTC-8)
        (datetime(2024, 1, 16, 7, 30, tzinfo=UTC), "America/Los_Angeles", "2024-01-15 23:30"),
        (datetime(2024, 1, 15, 23, 30, 59, tzinfo=UTC), "UTC", "2024-01-15 23:30"),
        # summer time: Berlin is UTC+2
        (datetime(2024, 7, 1, 22, 15, tzinfo=UTC), "Europe/Berlin", "2024-07-02 00:15"),
        # a non-UTC aware input is converted, not reinterpreted
        (
            datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "UTC",
            "2024-03-01 06:30",
        ),
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), "Pacific/Kiritimati", "2025-01-01 13:59"),
    ],
)
def test_cql_datetime_is_minute_granular_in_the_site_zone(
    instant: datetime, zone: str, expected: str
) -> None:
    assert cql.cql_datetime(instant, ZoneInfo(zone)) == expected


def test_seconds_are_rounded_down_so_the_instant_itself_is_included() -> None:
    text = cql.cql_datetime(datetime(2024, 1, 1, 10, 30, 59, 999999, tzinfo=UTC), ZoneInfo("UTC"))
    assert text == "2024-01-01 10:30"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="time-zone-aware"):
        cql.cql_datetime(datetime(2024, 1, 1), ZoneInfo("UTC"))


def test_modified_since_subtracts_the_overlap_in_the_site_zone() -> None:
    since = datetime(2024, 1, 16, 7, 0, tzinfo=UTC)
    zone = ZoneInfo("America/Los_Angeles")
    assert cql.modified_since_clause(since, zone=zone, overlap=timedelta(0)) == (
        'lastmodified >= "2024-01-15 23:00"'
    )
    assert cql.modified_since_clause(since, zone=zone, overlap=timedelta(days=1)) == (
        'lastmodified >= "2024-01-14 23:00"'
    )
    query = cql.content_cql("DEV", modified_since=since, zone=zone, overlap=timedelta(hours=2))
    assert 'lastmodified >= "2024-01-15 21:00"' in query
    with pytest.raises(InvalidInput):
        cql.modified_since_clause(since, zone=zone, overlap=timedelta(hours=-1))


def test_unknown_site_zone_is_a_configuration_error_naming_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="site_timezone"):
        cql.site_zone("Mars/Olympus_Mons")


def test_ids_cql_only_takes_digits() -> None:
    assert cql.ids_cql(["1", "22"]) == 'id IN ("1", "22")'
    assert cql.ids_cql(["7"]) == 'id = "7"'
    for bad in (["1 OR 1=1"], ["12a"], [""], []):
        with pytest.raises(InvalidInput):
            cql.ids_cql(bad)


def test_order_by_is_restricted() -> None:
    with pytest.raises(InvalidInput):
        cql.content_cql("DEV", order_by="id; DROP")
