"""The README's words, kept out of the code: `report.md` (the README with fields) and `sentences.md` (the named
sentences that depend on the figures), both beside this file."""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Mapping

FOLDER = Path(__file__).parent
_LIST_FIELD = re.compile(r"\{(\w+)\}")


@functools.lru_cache(maxsize=None)
def _sentences() -> dict[str, str]:
    named = {}
    for block in (FOLDER / "sentences.md").read_text().split("\n## ")[1:]:
        name, _, body = block.partition("\n")
        lines = [line for line in body.split("\n") if line]
        if len(lines) != 1:
            raise ValueError(f"sentences.md: '## {name}' holds {len(lines)} lines, expected one template line")
        named[name.strip()] = lines[0]
    return named


def sentence(name: str, **fields) -> str:
    """Sentence `name` of sentences.md with its fields filled."""
    return _sentences()[name].format(**fields)


def report(fields: Mapping[str, object]) -> str:
    """report.md filled: a line that is only `{name}` takes the lines of list `fields[name]` (none when empty), any
    other line is a `str.format` template. The leading comment is left out."""
    text = (FOLDER / "report.md").read_text()
    text = text[text.index("-->\n") + 4:] if text.startswith("<!--") else text
    lines: list[str] = []
    for line in text.split("\n")[:-1]:
        whole = _LIST_FIELD.fullmatch(line)
        if whole and isinstance(fields[whole.group(1)], list):
            lines += fields[whole.group(1)]
        else:
            lines.append(line.format(**fields))
    return "\n".join(lines) + "\n"
