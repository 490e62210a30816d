"""Every storage-format element the converter knows, with the exact Markdown it must produce."""

from __future__ import annotations

import pytest

from confluence_rag.content.storage import ConversionContext, storage_to_markdown

BASE = "https://x.atlassian.net/wiki"
CTX = ConversionContext(
    base_url=BASE,
    space_key="DEV",
    page_id="42",
    page_titles={"777": "Runbook"},
    page_urls={("OPS", "On call"): "https://x.atlassian.net/wiki/spaces/OPS/pages/9/On+call"},
    user_names={"5b10ac8d82e05b22cc7d4ef5": "Ada Lovelace"},
    space_names={"OPS": "Operations"},
)


def macro(name: str, *parts: str) -> str:
    return f'<ac:structured-macro ac:name="{name}" ac:schema-version="1" ac:macro-id="m-1">{"".join(parts)}</ac:structured-macro>'  # noqa: E501


def param(name: str, value: str) -> str:
    return f'<ac:parameter ac:name="{name}">{value}</ac:parameter>'


def rich(body: str) -> str:
    return f"<ac:rich-text-body>{body}</ac:rich-text-body>"


def plain(body: str) -> str:
    return f"<ac:plain-text-body><![CDATA[{body}]]></ac:plain-text-body>"


CASES: list[tuple[str, str, str]] = [
    # --- code and noformat -------------------------------------------------------------------
    (
        "code with language, title and theme",
        macro(
            "code",
            param("language", "js"),
            param("theme", "Confluence"),
            param("title", "Example"),
            param("linenumbers", "true"),
            plain("if (a < b && c) {\n  go();\n}"),
        ),
        "**Example**\n```javascript\nif (a < b && c) {\n  go();\n}\n```",
    ),
    (
        "code keeps indentation and inner blank lines",
        macro("code", param("language", "py"), plain("def f():\n\n    return 1\n")),
        "```python\ndef f():\n\n    return 1\n```",
    ),
    (
        "code split CDATA keeps ]]>",
        macro("code", param("language", "xml"), plain("a]]]]><![CDATA[>b")),
        "```xml\na]]>b\n```",
    ),
    (
        "code with entities inside CDATA stays literal",
        macro("code", param("language", "html"), plain("<p>&nbsp;&amp;</p>")),
        "```html\n<p>&nbsp;&amp;</p>\n```",
    ),
    (
        "code fence longer than backtick runs inside",
        macro("code", param("language", "markdown"), plain("```\nx\n````")),
        "`````markdown\n```\nx\n````\n`````",
    ),
    ("code language sh", macro("code", param("language", "sh"), plain("ls")), "```bash\nls\n```"),
    ("code language c#", macro("code", param("language", "c#"), plain("x;")), "```csharp\nx;\n```"),
    (
        "code language yml",
        macro("code", param("language", "yml"), plain("a: 1")),
        "```yaml\na: 1\n```",
    ),
    ("code language none", macro("code", param("language", "none"), plain("x")), "```\nx\n```"),
    ("code without language", macro("code", plain("x")), "```\nx\n```"),
    (
        "noformat",
        macro("noformat", plain("\n  keep\n   this\n")),
        "```\n  keep\n   this\n```",
    ),
    (
        "legacy ac:macro code",
        '<ac:macro ac:name="code"><ac:parameter ac:name="language">java</ac:parameter>'
        "<ac:plain-text-body><![CDATA[int x;]]></ac:plain-text-body></ac:macro>",
        "```java\nint x;\n```",
    ),
    (
        "code inside a list item is indented under it",
        "<ul><li><p>Run:</p>"
        + macro("code", param("language", "bash"), plain("make\nmake test"))
        + "</li></ul>",
        "- Run:\n\n  ```bash\n  make\n  make test\n  ```",
    ),
    # --- admonitions -------------------------------------------------------------------------
    ("info", macro("info", param("icon", "true"), rich("<p>Read me.</p>")), "> **Info:** Read me."),
    ("note", macro("note", rich("<p>Careful.</p>")), "> **Note:** Careful."),
    ("tip", macro("tip", rich("<p>Try this.</p>")), "> **Tip:** Try this."),
    (
        "warning with title",
        macro("warning", param("title", "Hello"), rich("<p>Warning panel</p>")),
        "> **Warning: Hello**\n>\n> Warning panel",
    ),
    (
        "admonition with paragraphs and a list",
        macro("note", rich("<p>One.</p><p>Two.</p><ul><li>a</li><li>b</li></ul>")),
        "> **Note:** One.\n>\n> Two.\n>\n> - a\n> - b",
    ),
    (
        "admonition starting with a list puts the label on its own line",
        macro("tip", rich("<ul><li>a</li></ul>")),
        "> **Tip:**\n>\n> - a",
    ),
    (
        "panel with title, colours never leak",
        macro(
            "panel",
            param("title", "Heads up"),
            param("bgColor", "#EAE6FF"),
            param("borderColor", "#998DD9"),
            rich("<p>Body</p>"),
        ),
        "> **Heads up**\n>\n> Body",
    ),
    (
        "panel without title",
        macro("panel", param("bgColor", "#fff"), rich("<p>Body</p>")),
        "> Body",
    ),
    (
        "code inside an admonition",
        macro("info", rich("<p>Do:</p>" + macro("code", param("language", "js"), plain("a()")))),
        "> **Info:** Do:\n>\n> ```javascript\n> a()\n> ```",
    ),
    ("empty admonition disappears", macro("info", rich("<p></p>")), ""),
    # --- containers --------------------------------------------------------------------------
    (
        "expand with title",
        macro("expand", param("title", "Details"), rich("<p>Hidden text</p>")),
        "**Details**\n\nHidden text",
    ),
    ("expand without title", macro("expand", rich("<p>Hidden text</p>")), "Hidden text"),
    ("excerpt", "<p>a</p>" + macro("excerpt", param("hidden", "true"), rich("<p>b</p>")), "a\n\nb"),
    ("details", macro("details", param("id", "x1"), rich("<p>props</p>")), "props"),
    (
        "section and columns in reading order",
        macro(
            "section",
            rich(
                macro("column", param("width", "50%"), rich("<p>left</p>"))
                + macro("column", rich("<p>right</p>"))
            ),
        ),
        "left\n\nright",
    ),
    (
        "layouts flattened in reading order",
        '<ac:layout><ac:layout-section ac:type="two_equal"><ac:layout-cell><p>one</p>'
        "</ac:layout-cell><ac:layout-cell><p>two</p></ac:layout-cell></ac:layout-section>"
        '<ac:layout-section ac:type="single"><ac:layout-cell><p>three</p></ac:layout-cell>'
        "</ac:layout-section></ac:layout>",
        "one\n\ntwo\n\nthree",
    ),
    # --- small macros ------------------------------------------------------------------------
    (
        "status shows its title only",
        "<p>State: "
        + macro("status", param("colour", "Green"), param("title", "Done"), param("subtle", "true"))
        + " now</p>",
        "State: Done now",
    ),
    (
        "jira single issue",
        "<p>"
        + macro(
            "jira", param("server", "JIRA (x)"), param("serverId", "70d8"), param("key", "ED-1068")
        )
        + "</p>",
        "ED-1068",
    ),
    (
        "jira issue list",
        macro(
            "jira",
            param("columns", "key,summary"),
            param("jqlQuery", "project = ED"),
            param("maximumIssues", "20"),
        ),
        "Jira issues: project = ED",
    ),
    ("toc dropped", "<p>a</p>" + macro("toc", param("maxLevel", "3")) + "<p>b</p>", "a\n\nb"),
    ("children dropped", macro("children", param("all", "true")), ""),
    ("recently-updated dropped", macro("recently-updated", param("max", "5")), ""),
    ("pagetree dropped", macro("pagetree", param("root", "@self")), ""),
    ("contentbylabel dropped", macro("contentbylabel", param("labels", "ops")), ""),
    ("blog-posts dropped", macro("blog-posts", param("content", "titles")), ""),
    (
        "anchor dropped inside a heading",
        "<h2>" + macro("anchor", param("", "top")) + "Top</h2>",
        "## Top",
    ),
    (
        "include names the page",
        macro(
            "include",
            param(
                "",
                '<ac:link><ri:page ri:content-title="Shared steps" ri:space-key="OPS"/></ac:link>',
            ),
        ),
        "(includes page: Shared steps)",
    ),
    (
        "excerpt-include names the page",
        macro(
            "excerpt-include",
            param("nopanel", "true"),
            param("", '<ac:link><ri:page ri:content-title="Intro"/></ac:link>'),
        ),
        "(includes page: Intro)",
    ),
    (
        "unknown macro keeps its rich body, never its parameters",
        macro(
            "my-custom", param("color", "Red"), param("secretish", "uuid-1234"), rich("<p>Kept</p>")
        ),
        "Kept",
    ),
    (
        "unknown macro without body is dropped",
        "<p>x " + macro("gallery", param("columns", "3")) + " y</p>",
        "x y",
    ),
    (
        "unknown macro with a plain-text body becomes code",
        macro("plantuml", param("format", "svg"), plain("@startuml\nA -> B\n@enduml")),
        "```plantuml\n@startuml\nA -> B\n@enduml\n```",
    ),
    (
        "inline math keeps the formula",
        "<p>Sum: "
        + macro("eazy-math-inline", param("body", r"\sum_{i=1}^{n} i"), param("align", "center"))
        + ".</p>",
        r"Sum: $\sum_{i=1}^{n} i$.",
    ),
    (
        "block math keeps the formula",
        macro("easy-math-block", param("body", r"\frac{a}{b}"), param("align", "center")),
        "$$\n\\frac{a}{b}\n$$",
    ),
    # --- links -------------------------------------------------------------------------------
    (
        "link to a page in this space, no body",
        '<p>See <ac:link><ri:page ri:content-title="Setup Guide"/></ac:link>.</p>',
        f"See [Setup Guide]({BASE}/display/DEV/Setup+Guide).",
    ),
    (
        "link to a page in another space with a known URL",
        '<p><ac:link><ri:page ri:space-key="OPS" ri:content-title="On call"/>'
        "<ac:plain-text-link-body><![CDATA[the rota]]></ac:plain-text-link-body></ac:link></p>",
        "[the rota](https://x.atlassian.net/wiki/spaces/OPS/pages/9/On+call)",
    ),
    (
        "link to a page in another space",
        '<p><ac:link><ri:page ri:space-key="HR" ri:content-title="Leave"/></ac:link></p>',
        f"[Leave]({BASE}/display/HR/Leave)",
    ),
    (
        "link by content id uses the known title",
        '<p><ac:link><ri:page ri:content-id="777"/></ac:link></p>',
        f"[Runbook]({BASE}/display/DEV/Runbook)",
    ),
    (
        "rich link body",
        '<p><ac:link><ri:page ri:content-title="A"/>'
        "<ac:link-body>the <strong>A</strong> page</ac:link-body></ac:link></p>",
        f"[the **A** page]({BASE}/display/DEV/A)",
    ),
    (
        "link to an attachment",
        '<p><ac:link><ri:attachment ri:filename="Report 2024.pdf"/></ac:link></p>',
        f"[Report 2024.pdf]({BASE}/download/attachments/42/Report%202024.pdf)",
    ),
    (
        "link to a user by account id",
        '<p>Ask <ac:link><ri:user ri:account-id="5b10ac8d82e05b22cc7d4ef5"/></ac:link></p>',
        f"Ask [@Ada Lovelace]({BASE}/people/5b10ac8d82e05b22cc7d4ef5)",
    ),
    (
        "link to a user by username",
        '<p><ac:link><ri:user ri:username="jdoe"/></ac:link></p>',
        f"[@jdoe]({BASE}/display/~jdoe)",
    ),
    (
        "link to a user by userkey",
        '<p><ac:link><ri:user ri:userkey="8a7f808"/></ac:link></p>',
        f"[@8a7f808]({BASE}/users/viewuserprofile.action?userKey=8a7f808)",
    ),
    (
        "link to a space",
        '<p><ac:link><ri:space ri:space-key="OPS"/></ac:link></p>',
        f"[Operations]({BASE}/display/OPS)",
    ),
    (
        "anchor link on this page keeps its text",
        '<p><ac:link ac:anchor="install"><ac:link-body>Install</ac:link-body></ac:link></p>',
        "Install",
    ),
    (
        "plain-text link body with brackets",
        '<p><ac:link><ri:page ri:content-title="X"/>'
        "<ac:plain-text-link-body><![CDATA[a [b]]]></ac:plain-text-link-body></ac:link></p>",
        f"[a \\[b\\]]({BASE}/display/DEV/X)",
    ),
    (
        "html link",
        '<p>Go <a href="https://example.com/a b">there</a></p>',
        "Go [there](https://example.com/a%20b)",
    ),
    # --- images ------------------------------------------------------------------------------
    (
        "image attachment with alt",
        '<p><ac:image ac:alt="Diagram" ac:width="300">'
        '<ri:attachment ri:filename="arch.png"/></ac:image></p>',
        f"![Diagram]({BASE}/download/attachments/42/arch.png)",
    ),
    (
        "image url with caption",
        '<ac:image><ri:url ri:value="https://cdn.example.com/logo.png"/>'
        "<ac:caption><p>Our logo</p></ac:caption></ac:image>",
        "![Our logo](https://cdn.example.com/logo.png)",
    ),
    (
        "image with alt and a different caption",
        '<ac:image ac:alt="Logo"><ri:url ri:value="https://cdn.example.com/l.png"/>'
        "<ac:caption>Figure 1</ac:caption></ac:image>",
        "![Logo](https://cdn.example.com/l.png)\n*Figure 1*",
    ),
    # --- small elements ----------------------------------------------------------------------
    ("emoticon by name", '<p>Done <ac:emoticon ac:name="tick"/></p>', "Done ✅"),
    (
        "emoticon with fallback",
        '<p><ac:emoticon ac:name="blue-star" ac:emoji-shortname=":grin:" '
        'ac:emoji-fallback="😁"/> hi</p>',
        "😁 hi",
    ),
    ("emoticon unknown name", '<p><ac:emoticon ac:name="unknown"/></p>', ":unknown:"),
    ("date", '<p>Due <time datetime="2024-03-01"/> sharp</p>', "Due 2024-03-01 sharp"),
    (
        "task list",
        "<ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status>"
        "<ac:task-body>Ship it</ac:task-body></ac:task><ac:task><ac:task-id>2</ac:task-id>"
        "<ac:task-uuid>u-2</ac:task-uuid><ac:task-status>incomplete</ac:task-status>"
        "<ac:task-body>Tell <strong>everyone</strong></ac:task-body></ac:task></ac:task-list>",
        "- [x] Ship it\n- [ ] Tell **everyone**",
    ),
    (
        "nested task list",
        "<ac:task-list><ac:task><ac:task-status>incomplete</ac:task-status><ac:task-body>Parent"
        "<ac:task-list><ac:task><ac:task-status>complete</ac:task-status><ac:task-body>Child"
        "</ac:task-body></ac:task></ac:task-list></ac:task-body></ac:task></ac:task-list>",
        "- [ ] Parent\n  - [x] Child",
    ),
    (
        "placeholder dropped",
        "<p>Email: <ac:placeholder>Insert your email here</ac:placeholder></p>",
        "Email:",
    ),
    (
        "inline comment marker keeps its text",
        '<p>A <ac:inline-comment-marker ac:ref="2c46">marked</ac:inline-comment-marker> word</p>',
        "A marked word",
    ),
    ("nbsp entity", "<p>a&nbsp;b &amp; c</p>", "a b & c"),
    ("escaped markup stays text", "<p>Use &lt;ac:link&gt; here</p>", "Use \\<ac:link> here"),
    (
        "new-editor panel (adf-extension) uses its node, not the fallback copy",
        '<ac:adf-extension><ac:adf-node type="panel">'
        '<ac:adf-attribute key="panel-type">note</ac:adf-attribute>'
        "<ac:adf-content><p>Custom note body</p></ac:adf-content></ac:adf-node>"
        '<ac:adf-fallback><div class="panel"><p>Custom note body</p></div></ac:adf-fallback>'
        "</ac:adf-extension>",
        "> **Note:** Custom note body",
    ),
    (
        "decision list",
        '<ac:adf-extension><ac:adf-node type="decision-list">'
        '<ac:adf-attribute key="local-id">abc</ac:adf-attribute>'
        '<ac:adf-node type="decision-item"><ac:adf-attribute key="state">DECIDED'
        "</ac:adf-attribute><ac:adf-content>Use Postgres</ac:adf-content></ac:adf-node>"
        '<ac:adf-node type="decision-item"><ac:adf-attribute key="state">DECIDED'
        "</ac:adf-attribute><ac:adf-content>Ship Friday</ac:adf-content></ac:adf-node>"
        "</ac:adf-node></ac:adf-extension>",
        "- Decision: Use Postgres\n- Decision: Ship Friday",
    ),
    (
        "adf-extension with only a fallback",
        "<ac:adf-extension><ac:adf-fallback><p>only fallback</p></ac:adf-fallback>"
        "</ac:adf-extension>",
        "only fallback",
    ),
    # --- tables ------------------------------------------------------------------------------
    (
        "table with header row",
        "<table><tbody><tr><th>Name</th><th>Role</th></tr><tr><td>Ada</td><td>Dev</td></tr></tbody></table>",
        "| Name | Role |\n| --- | --- |\n| Ada | Dev |",
    ),
    (
        "table without header uses the first row",
        "<table><tbody><tr><td>k</td><td>v</td></tr><tr><td>a</td><td>1</td></tr></tbody></table>",
        "| k | v |\n| --- | --- |\n| a | 1 |",
    ),
    (
        "table cells with paragraphs, breaks and lists",
        "<table><tr><th>A</th><th>B</th></tr><tr><td><p>First line.</p><p>Second</p></td>"
        "<td>x<br/>y<ul><li>one</li><li>two</li></ul></td></tr></table>",
        "| A | B |\n| --- | --- |\n| First line. Second | x; y • one • two |",
    ),
    (
        "table colspan and rowspan keep columns aligned",
        "<table><tr><th>a</th><th>b</th><th>c</th></tr>"
        '<tr><td colspan="2">wide</td><td>1</td></tr>'
        '<tr><td rowspan="2">tall</td><td>2</td><td>3</td></tr>'
        "<tr><td>4</td><td>5</td></tr></table>",
        "| a | b | c |\n| --- | --- | --- |\n| wide |  | 1 |\n| tall | 2 | 3 |\n|  | 4 | 5 |",
    ),
    (
        "pipes in cells are escaped",
        "<table><tr><td>a|b</td></tr></table>",
        "| a\\|b |\n| --- |",
    ),
    (
        "nested table is flattened into its cell",
        "<table><tr><th>Outer</th></tr><tr><td><table><tr><td>a</td><td>b</td></tr>"
        "<tr><td>c</td><td>d</td></tr></table></td></tr></table>",
        "| Outer |\n| --- |\n| a, b; c, d |",
    ),
    (
        "code in a cell is inline",
        "<table><tr><th>Cmd</th></tr><tr><td>"
        + macro("code", param("language", "bash"), plain("make\nmake test"))
        + "</td></tr></table>",
        "| Cmd |\n| --- |\n| `make ⏎ make test` |",
    ),
    ("empty table disappears", "<table><tr><td></td></tr></table>", ""),
    # --- HTML basics -------------------------------------------------------------------------
    ("headings are ATX", "<h1>One</h1><h3>Three</h3>", "# One\n\n### Three"),
    (
        "nested lists",
        "<ul><li>a<ul><li>b<ol><li>c</li><li>d</li></ol></li></ul></li><li>e</li></ul>",
        "- a\n  - b\n    1. c\n    2. d\n- e",
    ),
    ("ordered list start", '<ol start="3"><li>x</li><li>y</li></ol>', "3. x\n4. y"),
    (
        "emphasis",
        "<p><strong>b</strong> <em>i</em> <s>s</s> <u>u</u> <code>c_d</code></p>",
        "**b** *i* ~~s~~ u `c_d`",
    ),
    ("underscores and asterisks are not escaped", "<p>my_var * 2</p>", "my_var * 2"),
    ("pre", "<pre>  x = 1\n  y = 2</pre>", "```\n  x = 1\n  y = 2\n```"),
    ("blockquote", "<blockquote><p>Quoted</p></blockquote>", "> Quoted"),
    ("line break", "<p>a<br/>b</p>", "a\nb"),
    ("horizontal rule", "<p>a</p><hr/><p>b</p>", "a\n\n---\n\nb"),
]


@pytest.mark.parametrize(("xhtml", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_element_converts_exactly(xhtml: str, expected: str) -> None:
    assert storage_to_markdown(xhtml, CTX) == expected


def test_attachment_without_page_id_still_names_the_file() -> None:
    ctx = ConversionContext(base_url=BASE, space_key="DEV")
    xhtml = '<p><ac:link><ri:attachment ri:filename="a.pdf"/></ac:link></p>'
    assert storage_to_markdown(xhtml, ctx) == "a.pdf"


def test_attachment_of_another_page_links_to_that_page() -> None:
    xhtml = (
        '<p><ac:link><ri:attachment ri:filename="b.pdf"><ri:page ri:content-title="Other"/>'
        "</ri:attachment></ac:link></p>"
    )
    assert storage_to_markdown(xhtml, CTX) == f"[b.pdf]({BASE}/display/DEV/Other)"


def test_context_is_optional() -> None:
    assert storage_to_markdown("<p>plain</p>") == "plain"
    assert storage_to_markdown(None) == ""
    assert storage_to_markdown(b"<p>bytes \xc3\xa9</p>") == "bytes é"
