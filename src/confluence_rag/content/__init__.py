"""Storage-format XHTML to Markdown, code blocks, page metadata. Pure functions, no I/O."""
