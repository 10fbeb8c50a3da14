"""axe-core (installed from npm by scripts/ensure-axe, pinned in package-lock.json) run in a
page: what it finds, and a readable account of it for an assertion's message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
# What a page must never have; "moderate" and "minor" findings are reported, not failed on.
BLOCKING = ("serious", "critical")


def violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (WCAG 2.x A and AA rules, and axe's best
    practices), each with its rule id, impact, help text and the offending elements."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run scripts/ensure-axe (npm ci)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated from outside the page, as the page's Content-Security-Policy refuses an
        # inline <script> (add_script_tag) and every test fails on a refusal.
        page.evaluate(AXE.read_text())
    return page.evaluate(
        """async () => {
            const results = await window.axe.run(document, {resultTypes: ["violations"]});
            return results.violations.map(v => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
            }));
        }"""
    )


def blocking(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [violation for violation in found if violation["impact"] in BLOCKING]


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for violation in found:
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']})")
        for node in violation["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['summary']}".replace("\n", " "))
    return "\n".join(lines)
