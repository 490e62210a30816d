"""Confluence code-macro language names -> the info strings Markdown tools understand.

Confluence's code macro stores whatever its picker (or a publisher tool) wrote: ``js``, ``sh``,
``c#``, ``html/xml``, ``none``. Search filters and syntax highlighters expect one canonical
name per language, so every spelling of a language is mapped to one name here.
"""

from __future__ import annotations

import re

# Spellings seen in Confluence's picker (Server/DC and Cloud), in publisher tools and in
# hand-written storage, mapped to the canonical (linguist/highlight.js style) name.
_ALIASES: dict[str, str] = {
    "js": "javascript",
    "javascript": "javascript",
    "node": "javascript",
    "nodejs": "javascript",
    "jsx": "jsx",
    "ts": "typescript",
    "typescript": "typescript",
    "tsx": "tsx",
    "sh": "bash",
    "shell": "bash",
    "bash": "bash",
    "zsh": "bash",
    "ksh": "bash",
    "console": "bash",
    "py": "python",
    "py3": "python",
    "python": "python",
    "python3": "python",
    "python2": "python",
    "yml": "yaml",
    "yaml": "yaml",
    "c#": "csharp",
    "cs": "csharp",
    "csharp": "csharp",
    "c++": "cpp",
    "cpp": "cpp",
    "cxx": "cpp",
    "c": "c",
    "h": "c",
    "objc": "objectivec",
    "objective-c": "objectivec",
    "objectivec": "objectivec",
    "rb": "ruby",
    "ruby": "ruby",
    "ps": "powershell",
    "ps1": "powershell",
    "pwsh": "powershell",
    "powershell": "powershell",
    "bat": "batch",
    "cmd": "batch",
    "batch": "batch",
    "dos": "batch",
    "golang": "go",
    "go": "go",
    "rs": "rust",
    "rust": "rust",
    "kt": "kotlin",
    "kts": "kotlin",
    "kotlin": "kotlin",
    "java": "java",
    "javafx": "java",
    "groovy": "groovy",
    "gradle": "groovy",
    "scala": "scala",
    "clj": "clojure",
    "clojure": "clojure",
    "erl": "erlang",
    "erlang": "erlang",
    "ex": "elixir",
    "exs": "elixir",
    "elixir": "elixir",
    "hs": "haskell",
    "haskell": "haskell",
    "fs": "fsharp",
    "f#": "fsharp",
    "fsharp": "fsharp",
    "vb": "vbnet",
    "vb.net": "vbnet",
    "vbnet": "vbnet",
    "vbs": "vbscript",
    "vbscript": "vbscript",
    "actionscript3": "actionscript",
    "actionscript": "actionscript",
    "as3": "actionscript",
    "applescript": "applescript",
    "coldfusion": "coldfusion",
    "cf": "coldfusion",
    "cfm": "coldfusion",
    "delphi": "delphi",
    "pascal": "delphi",
    "pas": "delphi",
    "diff": "diff",
    "patch": "diff",
    "perl": "perl",
    "pl": "perl",
    "php": "php",
    "r": "r",
    "sql": "sql",
    "mysql": "sql",
    "plsql": "sql",
    "postgresql": "sql",
    "postgres": "sql",
    "tsql": "sql",
    "html/xml": "xml",
    "xml": "xml",
    "xhtml": "xml",
    "xsl": "xml",
    "html": "html",
    "htm": "html",
    "css": "css",
    "sass": "scss",
    "scss": "scss",
    "less": "less",
    "json": "json",
    "jsonc": "json",
    "toml": "toml",
    "ini": "ini",
    "properties": "properties",
    "dockerfile": "dockerfile",
    "docker": "dockerfile",
    "makefile": "makefile",
    "make": "makefile",
    "tf": "hcl",
    "hcl": "hcl",
    "terraform": "hcl",
    "md": "markdown",
    "markdown": "markdown",
    "graphql": "graphql",
    "gql": "graphql",
    "swift": "swift",
    "dart": "dart",
    "lua": "lua",
    "matlab": "matlab",
    "nginx": "nginx",
    "protobuf": "protobuf",
    "proto": "protobuf",
    "mermaid": "mermaid",
    "plantuml": "plantuml",
    "puml": "plantuml",
    "latex": "latex",
    "tex": "latex",
}

# Confluence's way of saying "no highlighting".
_NO_LANGUAGE = frozenset(
    {"", "none", "text", "plain", "plaintext", "plain text", "txt", "nohighlight"}
)

# What survives as an info string when the name is unknown: one token a fence can carry.
_SAFE_INFO = re.compile(r"^[a-z0-9][a-z0-9_+#.-]{0,39}$")


def normalise_language(name: str | None) -> str:
    """The canonical language for a code macro's ``language`` parameter ("" for none).

    Unknown names are kept (lower-cased) when they are a plausible single token, because the
    author's label is still information; anything else (template junk, spaces, backticks)
    becomes "" so it can never break the fence line.
    """
    if name is None:
        return ""
    key = name.strip().lower()
    if key in _NO_LANGUAGE:
        return ""
    if key in _ALIASES:
        return _ALIASES[key]
    return key if _SAFE_INFO.match(key) else ""


def known_language(name: str | None) -> str:
    """The canonical language only if ``name`` is a known spelling ("" otherwise).

    For macros that are named after their language (``sql``, ``html``, ``plantuml``): an unknown
    macro's name is not a language and must not become a fence's info string.
    """
    return _ALIASES.get((name or "").strip().lower(), "")
