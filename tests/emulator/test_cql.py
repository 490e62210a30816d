"""The CQL subset, table-driven: what each query selects, the order it returns, and the queries
it refuses. Evaluated against a hand-built site whose timestamps straddle a day boundary in the
user's time zone (New York), then checked once over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from confluence_rag.emulator import DEMO_ACCOUNT_ID, EmulatorConfig, EmulatorServer, EmulatorState
from confluence_rag.emulator.cql import And, Clause, CqlError, Not, Or, parse, tokenize
from tests.emulator.helpers import client
from tests.plugins.emulator import EmulatorFactory

CODE = (
    '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">python'
    '</ac:parameter><ac:plain-text-body><![CDATA[print("unique_marker_42")]]>'
    "</ac:plain-text-body></ac:structured-macro>"
)


def build_site() -> tuple[EmulatorState, dict[str, str]]:
    config = EmulatorConfig(pages=0, extra_spaces={"OPS": 0}, timezone="America/New_York")
    state = EmulatorState(config)
    author = next(u for u in state.users.values() if u.email.endswith("@example.com")
                  and u.account_id != DEMO_ACCOUNT_ID and u.username != "restricted")  # fmt: skip

    def at(*args: int) -> None:
        state.set_now(datetime(*args, tzinfo=UTC))  # type: ignore[misc]

    at(2024, 1, 15, 10, 0)
    alpha = state.add_page("Alpha Guide", f"<p>Deploy the kestrel service</p>{CODE}",
                           labels=["howto", "api"])  # fmt: skip
    at(2024, 2, 1, 5, 30)  # 00:30 on Feb 1 in New York
    beta = state.add_page("Beta Runbook", "<p>Rollback steps for the gateway &amp; proxy</p>",
                          parent_id=alpha.id, labels=["runbook"])  # fmt: skip
    at(2024, 2, 1, 4, 30)  # 23:30 on Jan 31 in New York, though Feb 1 in UTC
    gamma = state.add_page("Gamma Notes", "<p>Plain notes</p>", parent_id=beta.id,
                           author=author.account_id)  # fmt: skip
    at(2024, 3, 1, 9, 0)
    release = state.add_page("Release 1.0", "<p>Shipped</p>", content_type="blogpost")
    at(2024, 3, 2, 9, 0)
    ops = state.add_page("Ops Home", "<p>Operations</p>", space_key="OPS")
    trashed = state.add_page("Trashed Page", "<p>Gone</p>")
    state.trash(trashed.id)
    at(2024, 3, 5, 15, 0)
    state.edit_page(alpha.id, body="<p>Deploy the kestrel service, edited</p>" + CODE)
    ids = {"alpha": alpha.id, "beta": beta.id, "gamma": gamma.id, "release": release.id,
           "ops": ops.id, "trashed": trashed.id, "author": author.account_id}  # fmt: skip
    return state, ids


@pytest.fixture(scope="module")
def site() -> tuple[EmulatorState, dict[str, str]]:
    return build_site()


def titles(state: EmulatorState, query: str) -> list[str]:
    demo = state.users[DEMO_ACCOUNT_ID]
    return [record.title for record in state.search(query, demo)]


CASES = [
    ("space = DEMO", {"Alpha Guide", "Beta Runbook", "Gamma Notes", "Release 1.0"}),
    ('space = "OPS"', {"Ops Home"}),
    ("space.key = demo and type = blogpost", {"Release 1.0"}),
    ("space in (DEMO, OPS) and type = blogpost", {"Release 1.0"}),
    ("type = page and space = DEMO", {"Alpha Guide", "Beta Runbook", "Gamma Notes"}),
    ("type in (page, blogpost) and not space = DEMO", {"Ops Home"}),
    ("type = page and space != DEMO", {"Ops Home"}),
    ("ancestor = {alpha}", {"Beta Runbook", "Gamma Notes"}),
    ("ancestor in ({beta}, 1)", {"Gamma Notes"}),
    ("parent = {alpha}", {"Beta Runbook"}),
    ("parent != {alpha} and space = DEMO", {"Alpha Guide", "Gamma Notes", "Release 1.0"}),
    ("label = runbook", {"Beta Runbook"}),
    ('label in ("howto", runbook)', {"Alpha Guide", "Beta Runbook"}),
    ("label != runbook and space = DEMO", {"Alpha Guide", "Gamma Notes", "Release 1.0"}),
    ("label not in (runbook, howto) and space = DEMO", {"Gamma Notes", "Release 1.0"}),
    ("id = {beta}", {"Beta Runbook"}),
    ("id in ({alpha}, {beta})", {"Alpha Guide", "Beta Runbook"}),
    ("content = {gamma}", {"Gamma Notes"}),
    ('title = "alpha guide"', {"Alpha Guide"}),
    ('title ~ "guide"', {"Alpha Guide"}),
    ('title ~ "rel*"', {"Release 1.0"}),
    ('title !~ "notes" and space = DEMO', {"Alpha Guide", "Beta Runbook", "Release 1.0"}),
    ('text ~ "gateway proxy"', {"Beta Runbook"}),
    ('text ~ "gateway kestrel"', set()),
    ('text ~ "unique_marker_42"', {"Alpha Guide"}),  # code blocks are indexed
    ('text ~ "\\"rollback steps\\""', {"Beta Runbook"}),
    ('text ~ "\\"steps rollback\\""', set()),
    ('text ~ "howto"', {"Alpha Guide"}),  # labels are indexed too
    ('created < "2024-02-01"', {"Alpha Guide", "Gamma Notes"}),  # New York, not UTC
    ('created = "2024-01-31"', {"Gamma Notes"}),
    ('created = "2024/02/01"', {"Beta Runbook"}),
    ('created >= "2024-02-01 00:30" and space = DEMO', {"Beta Runbook", "Release 1.0"}),
    ('created > "2024-02-01 00:30" and space = DEMO', {"Release 1.0"}),
    ('created <= "2024/01/31 23:30"', {"Alpha Guide", "Gamma Notes"}),
    ('created < "2024/01/31 23:30"', {"Alpha Guide"}),
    ('created != "2024-01-31" and type = page and space = DEMO', {"Alpha Guide", "Beta Runbook"}),
    ('lastmodified >= "2024-03-05"', {"Alpha Guide"}),
    ('lastmodified > "2024-03-05 09:59"', {"Alpha Guide"}),  # 15:00 UTC is 10:00 in New York
    ('lastmodified > "2024-03-05 10:00"', set()),  # ">" skips the whole minute named
    ('lastmodified = "2024-03-05 10:00"', {"Alpha Guide"}),
    ('lastModified >= "2024-03-05 10:01"', set()),
    ("status = trashed", {"Trashed Page"}),
    ('status in (current, trashed) and title ~ "page"', {"Trashed Page"}),
    ('title ~ "trashed"', set()),  # search never returns trashed content unless asked
    ("(space = OPS or label = api) and type = page", {"Alpha Guide", "Ops Home"}),
    ("space = DEMO and not (label = howto or label = runbook)", {"Gamma Notes", "Release 1.0"}),
    ("space = DEMO NOT label = runbook", {"Alpha Guide", "Gamma Notes", "Release 1.0"}),
    ("space = DEMO AND NOT type = page", {"Release 1.0"}),
    ("creator = {author}", {"Gamma Notes"}),
    ('contributor = "demo@example.com" and space = OPS', {"Ops Home"}),
    ("SPACE = DEMO and TYPE = BLOGPOST", {"Release 1.0"}),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_cql_selects(
    site: tuple[EmulatorState, dict[str, str]], query: str, expected: set[str]
) -> None:
    state, ids = site
    assert set(titles(state, query.format(**ids))) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("space = DEMO order by created desc",
         ["Release 1.0", "Beta Runbook", "Gamma Notes", "Alpha Guide"]),
        ("space = DEMO order by created",
         ["Alpha Guide", "Gamma Notes", "Beta Runbook", "Release 1.0"]),
        ("space = DEMO ORDER BY title DESC",
         ["Release 1.0", "Gamma Notes", "Beta Runbook", "Alpha Guide"]),
        ("space = DEMO order by lastmodified desc, title",
         ["Alpha Guide", "Release 1.0", "Beta Runbook", "Gamma Notes"]),
    ],
)  # fmt: skip
def test_order_by(
    site: tuple[EmulatorState, dict[str, str]], query: str, expected: list[str]
) -> None:
    state, _ = site
    assert titles(state, query) == expected


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("", "empty"),
        ("space =", "expected a value"),
        ("space = DEMO and", "expected a field"),
        ("space = DEMO or or type = page", "expected a field"),
        ("foo = bar", "No field exists with the name: foo"),
        ("text = foo", "operator '=' is not supported"),
        ("space ~ DEMO", "operator '~' is not supported"),
        ("created ~ 2024", "operator '~' is not supported"),
        ('created > "yesterday"', "is not a date"),
        ('created > "2024-13-01"', "is not a date"),
        ('created > now("-4q")', "bad date offset"),
        ("created > later()", "unknown date function"),
        ("(space = DEMO", "expected ')'"),
        ("space = DEMO)", "unexpected ')'"),
        ("space in DEMO", "expected '('"),
        ("space in (DEMO", "expected ')'"),
        ("space = DEMO order by foo", "cannot order by"),
        ("space = DEMO order title", "expected BY"),
        ('title ~ "   "', "has no words"),
        ('space = "DEMO', "unterminated string"),
        ("space ! DEMO", "unexpected '!'"),
        ("space = now()", "cannot be used"),
    ],
)
def test_invalid_cql_is_refused(
    site: tuple[EmulatorState, dict[str, str]], query: str, detail: str
) -> None:
    state, _ = site
    with pytest.raises(CqlError) as caught:
        titles(state, query)
    assert detail in caught.value.detail


def test_parser_builds_an_ast_with_precedence() -> None:
    query = parse('space = A OR space = B AND NOT label in ("x", y) ORDER BY created DESC')
    assert isinstance(query.where, Or)
    assert query.where.left == Clause("space", "=", (query.where.left.values[0],))  # type: ignore[union-attr]
    right = query.where.right
    assert isinstance(right, And) and isinstance(right.right, Not)
    label = right.right.operand
    assert isinstance(label, Clause) and label.op == "in"
    assert [v.text for v in label.values] == ["x", "y"]
    assert query.order[0].field == "created" and query.order[0].descending


def test_tokenizer_keeps_escaped_quotes_inside_one_string() -> None:
    tokens = tokenize(r'title = "say \"hi\" OR space = X"')
    assert [(t.kind, t.text) for t in tokens] == [
        ("word", "title"),
        ("op", "="),
        ("string", 'say "hi" OR space = X'),
        ("eof", ""),
    ]


def test_now_functions_follow_the_emulator_clock(
    site: tuple[EmulatorState, dict[str, str]],
) -> None:
    state, _ = site
    state.set_now(datetime(2024, 3, 6, 12, 0, tzinfo=UTC))
    assert titles(state, 'lastmodified >= now("-2d")') == ["Alpha Guide"]
    assert titles(state, 'lastmodified >= startOfDay("-1d") and type = page') == ["Alpha Guide"]
    state.set_now(datetime(2024, 4, 6, 12, 0, tzinfo=UTC))
    assert titles(state, 'lastmodified >= now("-2d")') == []


def test_invalid_cql_over_http_is_a_confluence_400(emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("datacenter", pages=3)
    with client(server) as http:
        response = http.get("/rest/api/content/search", params={"cql": "space = DEMO and"})
        missing = http.get("/rest/api/content/search")
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400 and body["reason"] == "Bad Request"
    assert "Could not parse cql : space = DEMO and" in body["message"]
    assert missing.status_code == 400


def test_search_endpoint_envelope(cloud_emulator: EmulatorServer) -> None:
    with client(cloud_emulator) as http:
        body = http.get(
            "/rest/api/search",
            params={"cql": "space = DEMO and type = page", "limit": 10,
                    "expand": "content.version,content.space"},
        ).json()  # fmt: skip
    pages = cloud_emulator.state.current_ids("DEMO", "page")
    assert body["totalSize"] == len(pages) and body["size"] == 10
    assert body["cqlQuery"] == "space = DEMO and type = page"
    first = body["results"][0]
    assert first["entityType"] == "content" and first["content"]["id"] in pages
    assert first["content"]["version"]["number"] >= 1 and first["content"]["space"]["key"] == "DEMO"
    assert first["url"].startswith("/spaces/DEMO/pages/")
    assert "cursor=" in body["_links"]["next"]
