"""The converter's document tree: what lxml's parser gives, as nodes the handlers can walk."""

from __future__ import annotations

from confluence_rag.content.tree import Element, Text, parse_html


def names(nodes: list[Element | Text]) -> list[str]:
    return [n.name if isinstance(n, Element) else f"'{n}'" for n in nodes]


def test_text_around_a_comment_is_one_node_and_comments_vanish() -> None:
    doc = parse_html("<p>before<!-- note -->after<?php x ?></p>")
    (p,) = doc.contents
    assert isinstance(p, Element)
    assert p.contents == ["beforeafter"]
    assert isinstance(p.contents[0], Text)


def test_content_after_stray_document_end_tags_is_kept_in_order() -> None:
    doc = parse_html("<p>a</p></body>tail<p>b</p></html>")
    assert names(doc.contents) == ["p", "'tail'", "p"]
    assert doc.get_text("|") == "a|tail|b"


def test_confluence_elements_keep_their_prefix_and_self_closing_tags_close() -> None:
    doc = parse_html(
        '<ac:link><ri:page ri:content-title="Home"/><ac:link-body>x</ac:link-body></ac:link>'
    )
    (link,) = doc.contents
    assert isinstance(link, Element)
    assert names(link.contents) == ["ri:page", "ac:link-body"]
    page = link.find("ri:page")
    assert page is not None and page.get("ri:content-title") == "Home" and page.contents == []


def test_siblings_and_parents_are_linked() -> None:
    doc = parse_html("<p>one <b>two</b> three</p>")
    p = doc.find("p")
    assert p is not None and p.parent is doc
    first, bold, last = p.contents
    assert first.next_sibling is bold and bold.previous_sibling is first
    assert bold.next_sibling is last and last.next_sibling is None
    assert first.previous_sibling is None and last.parent is p


def test_find_all_searches_descendants_or_only_children() -> None:
    doc = parse_html("<table><tr><td><table><tr><td>in</td></tr></table></td></tr></table>")
    outer = doc.find("table")
    assert outer is not None
    assert len(outer.find_all("td")) == 2
    assert outer.find_all("td", recursive=False) == []
    inner = outer.find_all(["table"])[0]
    assert inner.find_parent("table") is outer
    assert outer.find(lambda el: el.name == "td" and el.get_text() == "in") is not None


def test_replace_with_and_decompose_keep_sibling_links_consistent() -> None:
    doc = parse_html("<p>a<b>b</b><i>c</i>d</p>")
    p = doc.find("p")
    assert p is not None
    bold, italic = p.find("b"), p.find("i")
    assert bold is not None and italic is not None
    bold.replace_with("B")
    italic.decompose()
    assert p.contents == ["a", "B", "d"]
    a, b, d = p.contents
    assert a.next_sibling is b and b.next_sibling is d and d.previous_sibling is b
    assert b.parent is p and bold.parent is None and italic.parent is None


def test_nesting_far_deeper_than_libxml2s_tree_limit_is_built() -> None:
    doc = parse_html("<span>" * 5_000 + "bottom")
    depth, node = 0, doc
    while node.contents and isinstance(node.contents[0], Element):
        node, depth = node.contents[0], depth + 1
    assert depth == 5_000 and node.contents == ["bottom"]


def test_blank_input_is_an_empty_document() -> None:
    assert parse_html("").contents == []
    assert parse_html("  \n ").contents == []
