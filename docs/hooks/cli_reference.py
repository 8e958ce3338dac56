"""The CLI reference: each command's ``--help`` text, as argparse prints it at a fixed width."""

from __future__ import annotations

import argparse
import os


def cli_reference() -> str:
    """Markdown with one section per ``odist`` command, in the parser's order."""
    os.environ["COLUMNS"] = "110"  # argparse wraps help at the terminal width; fix it so the page is stable
    from odist.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    sections = [_section("odist", "", parser.format_help())]
    for name, sub in commands.choices.items():
        sections.append(_section(f"odist {name}", helps.get(name) or "", sub.format_help()))
    return "\n".join(sections)


def _section(title: str, summary: str, help_text: str) -> str:
    lead = f"{summary[0].upper()}{summary[1:]}.\n\n" if summary else ""
    return f"## `{title}`\n\n{lead}```text\n{help_text.rstrip()}\n```\n"
