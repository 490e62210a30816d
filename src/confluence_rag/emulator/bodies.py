"""Page bodies in real Confluence storage format, generated fast and deterministically.

A body is a sequence of sections (heading + prose) sprinkled with the constructs a converter
must survive: lists, tables, ``code`` macros with CDATA bodies in several languages (including
code containing ``<``, ``&`` and ``]]>``, which storage format writes as split CDATA sections),
info/note/warning/tip panels, expand, status, jira, task lists, layouts, ``ac:link`` to pages
and users, ``ac:image`` of an attachment, emoticons and dates. Word counts follow the target
the corpus asks for; prose comes from ``random.Random.choices`` over a fixed vocabulary, which
keeps 4,000 pages at a few seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

VOCABULARY = (
    "the a of to and in for is on that with as this by be are from at it or an we can "
    "service deployment cluster node pipeline build release version config setting team owner "
    "database index query cache latency throughput request response client server api endpoint "
    "token secret credential access permission role policy audit log metric alert dashboard "
    "incident runbook rollback migration schema table column backup restore replica shard "
    "queue worker job schedule retry timeout limit quota budget capacity storage volume disk "
    "network firewall proxy gateway certificate domain region zone account billing cost "
    "customer feature flag experiment review approval checklist process step guide overview "
    "design decision tradeoff requirement goal risk mitigation dependency upgrade patch "
    "security vulnerability scan test coverage integration unit staging production sandbox "
    "monitor trace span sample error warning failure recovery health check probe readiness "
    "container image registry kubernetes helm terraform ansible python java golang script "
    "should must will may never always usually first then next finally before after during "
    "quickly carefully manually automatically safely weekly daily hourly new old current "
    "stable legacy internal external shared private public primary secondary default custom "
    "update create delete rotate enable disable configure install verify document measure "
    "explain ensure avoid prefer handle escalate notify assign track close open reopen merge"
).split()

HEADINGS = (
    "Overview", "Background", "Goals", "Non-goals", "Architecture", "Setup", "Configuration",
    "Deployment", "Rollback", "Monitoring", "Troubleshooting", "FAQ", "Decisions", "Open questions",
    "Runbook", "Examples", "API reference", "Security", "Performance", "Next steps", "Owners",
    "Timeline", "Risks", "Testing", "Release notes", "Migration", "Glossary", "Known issues",
)  # fmt: skip

LANGUAGES = ("python", "java", "javascript", "sql", "bash", "yaml", "xml", "go", "json")

MARKER_WORDS_A = (
    "kestrel", "obsidian", "saffron", "tundra", "quasar", "marigold", "basalt", "cobalt",
    "juniper", "zephyr", "vermilion", "halcyon", "lichen", "tamarind", "nimbus", "ocelot",
)  # fmt: skip
MARKER_WORDS_B = (
    "umbra", "vortex", "lantern", "harbor", "citadel", "meadow", "prism", "quiver", "sprocket",
    "tangent", "walrus", "yonder", "gazebo", "fjord", "bramble", "pylon",
)  # fmt: skip

# Code snippets; {marker} is replaced by the page's marker comment (or a plain comment).
# Several contain "<", "&" and "]]>" on purpose: the storage format must split the CDATA.
SNIPPETS: dict[str, tuple[str, ...]] = {
    "python": (
        "{marker}\ndef retry(call, attempts=3):\n    for attempt in range(attempts):\n"
        "        try:\n            return call()\n        except TimeoutError:\n"
        "            if attempt + 1 >= attempts and attempts < 10:\n                raise\n",
        "{marker}\nmatrix = [[1, 2], [3, 4]]\nif matrix[1][matrix[0][0]]>2 & 1:\n"
        "    print('<ok> & done')\n",
    ),
    "java": (
        "{marker}\npublic List<String> names(Map<String, Integer> m) {\n"
        "    return m.keySet().stream().filter(k -> m.get(k) > 0 && k != null).toList();\n}\n",
    ),
    "javascript": (
        "{marker}\nconst ok = items.filter((x) => x.size < 10 && x.ready);\n"
        "const last = grid[rows[0]]>0 ? 'yes' : 'no';\n",
        "{marker}\nasync function load(url) {\n  const res = await fetch(url);\n"
        "  if (res.status >= 400) throw new Error(`failed: ${res.status}`);\n"
        "  return res.json();\n}\n",
    ),
    "sql": (
        "{marker}\nSELECT id, title FROM pages\nWHERE updated_at >= '2024-01-01' AND version < 5\n"
        "ORDER BY updated_at DESC;\n",
    ),
    "bash": (
        "{marker}\nset -euo pipefail\nkubectl rollout status deploy/api --timeout=120s "
        "&& echo 'ready' > /tmp/state 2>&1\n",
    ),
    "yaml": (
        "{marker}\nservice:\n  name: api\n  replicas: 3\n  env:\n    - name: LIMIT\n"
        '      value: "<250"\n',
    ),
    "xml": (
        "{marker}\n<config>\n  <value><![CDATA[raw & <unescaped>]]></value>\n"
        '  <limit max="10"/>\n</config>\n',
    ),
    "go": (
        "{marker}\nfunc Sum(xs []int) (total int) {\n\tfor _, x := range xs {\n"
        "\t\tif x < 0 && total > 0 {\n\t\t\tcontinue\n\t\t}\n\t\ttotal += x\n\t}\n\treturn\n}\n",
    ),
    "json": ('{marker_json}\n{"limit": 50, "expand": ["body.storage", "version"], "ok": true}\n',),
}

COMMENT_PREFIX = {
    "python": "#", "bash": "#", "yaml": "#", "sql": "--", "java": "//", "javascript": "//",
    "go": "//", "xml": None, "json": None,
}  # fmt: skip


def cdata(text: str) -> str:
    """Wrap text in CDATA, splitting on ``]]>`` the way Confluence writes it."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass(slots=True)
class LinkTarget:
    title: str
    space_key: str


@dataclass(slots=True)
class BuiltBody:
    storage: str
    words: int
    marker: str | None
    images: list[str] = field(default_factory=list)  # attachment file names the body shows


@dataclass(slots=True)
class BodyBuilder:
    """Builds bodies for one space. ``user_refs`` are ``ri:user`` attribute strings (Cloud
    ``ri:account-id="..."``, Data Center ``ri:userkey="..."``)."""

    rng: random.Random
    user_refs: list[str]
    space_key: str
    link_targets: list[LinkTarget] = field(default_factory=list)
    _jira_counter: int = 0

    def sentence(self, words: int) -> str:
        chosen = self.rng.choices(VOCABULARY, k=max(1, words))
        text = " ".join(chosen)
        return text[0].upper() + text[1:] + "."

    def paragraph(self, words: int) -> str:
        parts: list[str] = []
        left = words
        while left > 0:
            n = min(left, self.rng.randint(6, 18))
            parts.append(self.sentence(n))
            left -= n
        return "<p>" + " ".join(parts) + "</p>"

    def build(self, target_words: int, marker: str | None, with_code: bool) -> BuiltBody:
        """A body of about ``target_words`` words. With ``with_code`` the first code block holds
        the marker comment, so the marker is findable exactly where search must look."""
        if target_words < 15:
            # near-empty pages exist in every real wiki: a stub line, or nothing at all
            text = "" if target_words == 0 else f"<p>{self.sentence(max(1, target_words))}</p>"
            return BuiltBody(storage=text, words=target_words, marker=None)
        blocks: list[str] = []
        images: list[str] = []
        words = 0
        code_left = 1 if with_code else 0
        placed_marker: str | None = None
        section = 0
        while words < target_words or code_left:
            heading = HEADINGS[self.rng.randrange(len(HEADINGS))]
            blocks.append(f"<h2>{heading}</h2>" if section else f"<h1>{heading}</h1>")
            n = min(max(20, target_words - words), self.rng.randint(40, 140))
            blocks.append(self.paragraph(n))
            words += n + 1
            if code_left:
                blocks.append(self.code_block(marker if placed_marker is None else None))
                placed_marker = marker
                code_left -= 1
                words += 12
            if words < target_words:
                block, used = self.extra_block(images)
                blocks.append(block)
                words += used
            section += 1
        storage = "".join(blocks)
        if self.rng.random() < 0.12:
            storage = self.layout(storage)
        return BuiltBody(storage=storage, words=words, marker=placed_marker, images=images)

    def extra_block(self, images: list[str]) -> tuple[str, int]:
        roll = self.rng.random()
        if roll < 0.16:
            return self.bullet_list(), 30
        if roll < 0.26:
            return self.table(), 40
        if roll < 0.40:
            return self.code_block(None), 15
        if roll < 0.52:
            return self.panel(), 30
        if roll < 0.58:
            return self.expand(), 40
        if roll < 0.66:
            return self.task_list(), 20
        if roll < 0.74:
            return self.links_paragraph(), 25
        if roll < 0.80:
            return self.status_and_jira(), 15
        if roll < 0.86:
            name = f"diagram-{len(images) + 1}.png"
            images.append(name)
            return self.image(name), 3
        return self.paragraph(self.rng.randint(30, 90)), 60

    def bullet_list(self) -> str:
        tag = "ul" if self.rng.random() < 0.7 else "ol"
        items = "".join(
            f"<li>{self.sentence(self.rng.randint(3, 9))}</li>"
            for _ in range(self.rng.randint(2, 6))
        )
        return f"<{tag}>{items}</{tag}>"

    def table(self) -> str:
        cols = self.rng.randint(2, 4)
        head = "".join(f"<th>{self.rng.choice(VOCABULARY).title()}</th>" for _ in range(cols))
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(self.sentence(3))}</td>" for _ in range(cols)) + "</tr>"
            for _ in range(self.rng.randint(2, 6))
        )
        return f"<table><tbody><tr>{head}</tr>{rows}</tbody></table>"

    def code_block(self, marker: str | None) -> str:
        language = LANGUAGES[self.rng.randrange(len(LANGUAGES))]
        snippet = self.rng.choice(SNIPPETS[language])
        if marker is not None and COMMENT_PREFIX[language] is None:
            # a language without line comments cannot carry the marker; use one that can
            language = "python"
            snippet = SNIPPETS["python"][0]
        prefix = COMMENT_PREFIX[language]
        comment_text = f"marker: {marker}" if marker else "example"
        comment = f"{prefix} {comment_text}" if prefix else ""
        code = snippet.replace("{marker_json}", "").replace("{marker}", comment).lstrip("\n")
        title = ""
        if self.rng.random() < 0.3:
            title = f'<ac:parameter ac:name="title">{language} example</ac:parameter>'
        return (
            '<ac:structured-macro ac:name="code" ac:schema-version="1">'
            f'<ac:parameter ac:name="language">{language}</ac:parameter>{title}'
            f"<ac:plain-text-body>{cdata(code)}</ac:plain-text-body></ac:structured-macro>"
        )

    def panel(self) -> str:
        kind = self.rng.choice(("info", "note", "warning", "tip"))
        body = self.paragraph(self.rng.randint(12, 30))
        return (
            f'<ac:structured-macro ac:name="{kind}" ac:schema-version="1">'
            f"<ac:rich-text-body>{body}</ac:rich-text-body></ac:structured-macro>"
        )

    def expand(self) -> str:
        return (
            '<ac:structured-macro ac:name="expand" ac:schema-version="1">'
            '<ac:parameter ac:name="title">Details</ac:parameter>'
            f"<ac:rich-text-body>{self.paragraph(self.rng.randint(20, 50))}{self.bullet_list()}"
            "</ac:rich-text-body></ac:structured-macro>"
        )

    def task_list(self) -> str:
        tasks = []
        for index in range(self.rng.randint(2, 4)):
            status = "complete" if self.rng.random() < 0.5 else "incomplete"
            user = self.rng.choice(self.user_refs)
            tasks.append(
                f"<ac:task><ac:task-id>{index + 1}</ac:task-id>"
                f"<ac:task-status>{status}</ac:task-status><ac:task-body>"
                f"{escape(self.sentence(self.rng.randint(3, 7)))[:-1]} "
                f"<ac:link><ri:user {user} /></ac:link></ac:task-body></ac:task>"
            )
        return "<ac:task-list>" + "".join(tasks) + "</ac:task-list>"

    def links_paragraph(self) -> str:
        parts = [self.sentence(self.rng.randint(5, 10))[:-1], "see"]
        if self.link_targets:
            target = self.rng.choice(self.link_targets)
            parts.append(
                f"<ac:link><ri:page ri:content-title={quoteattr(target.title)} "
                f"ri:space-key={quoteattr(target.space_key)} />"
                f"<ac:plain-text-link-body>{cdata(target.title)}</ac:plain-text-link-body>"
                "</ac:link>"
            )
        parts.append("or ask")
        parts.append(f"<ac:link><ri:user {self.rng.choice(self.user_refs)} /></ac:link>")
        parts.append('before <time datetime="2024-03-15" /> <ac:emoticon ac:name="smile" />')
        return "<p>" + " ".join(parts) + "</p>"

    def status_and_jira(self) -> str:
        colour = self.rng.choice(("Green", "Yellow", "Red", "Blue"))
        self._jira_counter += 1
        key = f"{self.space_key[:4].upper()}-{100 + self._jira_counter}"
        return (
            "<p>Status: "
            '<ac:structured-macro ac:name="status" ac:schema-version="1">'
            f'<ac:parameter ac:name="colour">{colour}</ac:parameter>'
            f'<ac:parameter ac:name="title">{colour.upper()}</ac:parameter></ac:structured-macro>'
            ' tracked in <ac:structured-macro ac:name="jira" ac:schema-version="1">'
            '<ac:parameter ac:name="server">System JIRA</ac:parameter>'
            f'<ac:parameter ac:name="key">{key}</ac:parameter></ac:structured-macro></p>'
        )

    def image(self, name: str) -> str:
        return f'<p><ac:image ac:height="250"><ri:attachment ri:filename="{name}" /></ac:image></p>'

    def layout(self, inner: str) -> str:
        side = self.paragraph(self.rng.randint(10, 25))
        return (
            '<ac:layout><ac:layout-section ac:type="two_right_sidebar">'
            f"<ac:layout-cell>{inner}</ac:layout-cell><ac:layout-cell>{side}</ac:layout-cell>"
            "</ac:layout-section></ac:layout>"
        )


def marker_phrase(rng: random.Random, space_key: str, index: int) -> str:
    """A phrase no other page contains: two rare words, the space key and the page index."""
    a = MARKER_WORDS_A[rng.randrange(len(MARKER_WORDS_A))]
    b = MARKER_WORDS_B[rng.randrange(len(MARKER_WORDS_B))]
    return f"{a}_{b}_{space_key.lower()}_{index:05d}"
