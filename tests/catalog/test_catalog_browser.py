"""The team catalog in a real headless browser: Debian's chromium driven by Playwright (pointed at the
system browser; `playwright install` is never run). Two gateways as subprocesses: one without auth
(loopback only) and one with API keys, where each key sees only what its scopes allow.

Screenshots go to tests/artifacts/ (git-ignored) for a reviewer to look at."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import expect

from tests.conftest import http_gateway

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("MCP_GATEWAY_CHROMIUM", "/usr/bin/chromium")

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    server: {name: team-gateway, title: Team gateway, version: 1.0.0, instructions: Writing tools for the whole company.}
    providers:
      offline: {kind: mock}
    models:
      default: {provider: offline, model: mock-1}
      unpriced: {provider: offline, model: mock-unpriced}
    prices:
      offline/mock-1: {input: 3, output: 15}
    %(auth)s
    tools:
      - name: summarize
        title: Summarize text
        description: Summarize a text in a few sentences.
        version: 1.2.0
        team: Docs
        owner: ada@example.com
        tags: [writing, english]
        model: default
        input_schema:
          type: object
          properties:
            text: {type: string, minLength: 1, maxLength: 2000, description: The text to summarize.}
            sentences: {type: integer, minimum: 1, maximum: 5, default: 2, description: How many sentences.}
            style: {type: string, enum: [plain, bullet], default: plain}
          required: [text]
          additionalProperties: false
        messages:
          - {role: system, content: "Summarize in {{ sentences }} sentences, {{ style }} style."}
          - {role: user, content: "{{ text }}"}
      - name: translate
        title: Translate text
        description: Translate a text into another language.
        team: Localization
        tags: [language]
        model: default
        input_schema:
          type: object
          properties:
            text: {type: string, maxLength: 100}
            target: {type: string, enum: [fr, de, ja]}
          required: [text, target]
        messages: [{role: user, content: "Translate to {{ target }}: {{ text }}"}]
      - name: classify
        description: Classify a support ticket.
        team: Support
        status: deprecated
        deprecation_note: Use triage instead.
        model: unpriced
        input_schema:
          type: object
          properties: {ticket: {type: string, maxLength: 100}}
          required: [ticket]
        output_schema:
          type: object
          properties:
            category: {type: string, enum: [billing, bug, other], description: Where the ticket goes.}
            details: {type: object, properties: {urgent: {type: boolean}}}
          required: [category]
        messages: [{role: user, content: "Ticket: {{ ticket }}"}]
""")


def _require_chromium() -> None:
    """Fail (never skip) when the browser is missing: CI installs it (scripts/install-test-deps)."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"no chromium at {CHROMIUM}: run scripts/install-test-deps (apt-get install chromium)",
                    pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    expect.set_options(timeout=30_000)  # wait for the event, however loaded the machine is
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def open_gateway(tmp_path_factory) -> Iterator[str]:
    config = tmp_path_factory.mktemp("open") / "gateway.yaml"
    config.write_text(CONFIG % {"auth": ""})
    with http_gateway(config) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def keyed_gateway(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("keyed")
    config = root / "gateway.yaml"
    config.write_text(CONFIG % {"auth": "auth: {keys_file: keys.json}"})

    def create(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", "create", str(config), *args],
                             capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()

    keys = {"full": create("--name", "lead", "--scope", "tools:*", "--scope", "prompts:*"),
            "summarize": create("--name", "intern", "--scope", "tools:summarize")}
    with http_gateway(config) as server:
        yield {"url": server.base_url, "keys": keys, "log": server.log}


def _page(browser, base_url: str):
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors and CSP violations; an HTTP error status the page expects (a 400 from a bad
    # try-it call, a 404 for an unknown tool) is logged by the browser too and checked where it happens.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    return context, page, errors


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_find_a_tool_read_it_and_try_it(browser, open_gateway):
    context, page, errors = _page(browser, open_gateway)
    response = page.goto("/")
    assert response is not None and response.ok and page.url.endswith("/catalog")
    assert page.get_by_role("heading", level=1).inner_text() == "Team gateway"
    # Grouped by team, with every tool, prompt and model alias.
    assert page.locator(".group h3").all_inner_texts() == ["Docs", "Localization", "Support"]
    assert page.locator(".card:visible").count() == 3
    _screenshot(page, "catalog-index")

    page.get_by_label("Search tools").fill("transl")
    expect(page.locator(".card:visible")).to_have_count(1)
    assert page.locator(".card:visible .tool-link").inner_text() == "Translate text"
    assert page.locator(".group:visible h3").all_inner_texts() == ["Localization"]
    page.get_by_label("Search tools").fill("writing")  # a tag
    expect(page.locator(".card:visible")).to_have_count(1)
    page.locator(".card:visible .tool-link").click()

    page.wait_for_url("**/catalog/tools/summarize")
    assert "Summarize text" in page.get_by_role("heading", level=1).inner_text()
    rows = page.locator("table.schema").first.locator("tbody tr")
    assert rows.count() == 3
    assert rows.nth(1).locator("td").all_inner_texts()[:4] == ["sentences", "integer", "no", "2"]
    assert '"plain", "bullet"' in rows.nth(2).inner_text()
    assert "Summarize in" in page.locator(".message").first.inner_text()  # the rendered example prompt
    curl = page.locator("#code-curl").inner_text()
    assert f"{open_gateway}/v1/tools/summarize" in curl

    page.locator("#arg-text").fill("The gateway serves prompt tools over MCP and REST.")
    page.locator("#arg-sentences").fill("3")
    page.get_by_role("button", name="Call summarize").click()
    expect(page.locator("#try-cost")).to_have_text(re.compile(r"^\$"))
    answer = page.locator("#try-answer").inner_text()
    assert "The gateway serves prompt tools" in answer
    assert "input +" in page.locator("#try-usage").inner_text()
    assert page.locator("#try-route").inner_text().startswith("default → offline/mock-1")
    _screenshot(page, "catalog-tool")
    # A bad call shows the problem the REST API answered, field by field.
    page.locator("#arg-text").fill("")
    page.get_by_role("button", name="Call summarize").click()
    expect(page.locator("#try-answer")).to_contain_text("Invalid arguments")
    assert "'text' is a required property" in page.locator("#try-answer").inner_text()
    assert page.locator("#try-cost").inner_text() == ""

    # The call shows up in the usage table, with a real cost; the unpriced alias never shows $0.
    page.goto("/catalog")
    usage = page.locator("table.usage").first
    assert "summarize" in usage.inner_text() and "$0.0" in usage.inner_text()
    assert page.locator("svg.chart rect").count() >= 1
    assert errors == []
    context.close()


def test_readable_with_javascript_off(browser, open_gateway):
    context = browser.new_context(base_url=open_gateway, java_script_enabled=False)
    page = context.new_page()
    page.goto("/catalog?q=support")  # the search form works as a plain GET
    assert page.locator(".card:visible").count() == 1
    assert "Classify a support ticket" in page.locator(".card:visible").inner_text()
    page.goto("/catalog/tools/classify")
    assert "Deprecated." in page.locator(".notice").inner_text() and "Use triage instead." in page.content()
    output = page.locator("table.schema").nth(1).inner_text()
    assert "details.urgent" in output and "boolean" in output
    context.close()


def test_a_scoped_key_sees_only_its_tools_and_no_key_sees_nothing(browser, keyed_gateway):
    url, keys = keyed_gateway["url"], keyed_gateway["keys"]
    anonymous = httpx2.get(url + "/catalog")
    assert anonymous.status_code == 200 and "summarize" not in anonymous.text and "Docs" not in anonymous.text
    assert httpx2.get(url + "/catalog/fragment").status_code == 401
    assert httpx2.get(url + "/catalog/fragment/tools/summarize").status_code == 401
    bogus = httpx2.get(url + "/catalog/fragment", headers={"Authorization": "Bearer mgw_not-a-key"})
    assert bogus.status_code == 401 and "summarize" not in bogus.text

    context, page, errors = _page(browser, url)
    page.goto("/catalog")
    page.get_by_label("API key").fill(keys["summarize"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(".card")
    assert page.locator(".card .tool-link").all_inner_texts() == ["Summarize text"]
    assert "translate" not in page.content() and "Localization" not in page.content()
    # Only the model alias its tool uses, and no totals that mix other callers' calls.
    assert page.locator("#models-heading + table code").all_inner_texts() == ["default"]
    assert "Per model alias" not in page.content() and "Per key" not in page.content()
    # Not in the URL, not in a cookie, not in the page: only in this tab's session storage.
    assert keys["summarize"] not in page.url and context.cookies() == []
    assert keys["summarize"] not in page.content()
    assert page.evaluate("sessionStorage.getItem('mcp-gateway-key')") == keys["summarize"]
    page.goto("/catalog/tools/translate")  # out of scope looks like missing
    page.wait_for_selector("text=Not found")
    page.goto("/catalog/tools/summarize")
    page.wait_for_selector("form.try")
    page.locator("#arg-text").fill("Scoped keys see only their own tools.")
    page.get_by_role("button", name="Call summarize").click()
    expect(page.locator("#try-cost")).to_have_text(re.compile(r"^\$"))
    assert "Scoped keys see only" in page.locator("#try-answer").inner_text()
    assert keys["summarize"] not in page.content()
    _screenshot(page, "catalog-scoped")
    # The copy-paste snippets work as shown, with the viewer's key in the environment.
    env = {**os.environ, "MCP_GATEWAY_KEY": keys["summarize"],
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for snippet, expect_text in (("#code-curl", '"route":"default"'), ("#code-cli", "Offline answer")):
        command = page.locator(snippet).inner_text()
        assert "$MCP_GATEWAY_KEY" in command
        ran = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env)
        assert ran.returncode == 0 and expect_text in ran.stdout, (command, ran.stdout, ran.stderr)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("#login-hint")
    assert page.evaluate("sessionStorage.getItem('mcp-gateway-key')") is None

    lead, _, _ = _page(browser, url)
    lead_page = lead.pages[0]
    lead_page.goto("/catalog")
    lead_page.get_by_label("API key").fill(keys["full"])
    lead_page.keyboard.press("Enter")
    lead_page.wait_for_selector(".card")
    assert lead_page.locator(".card").count() == 3
    assert "Per model alias" in lead_page.content() and "Per key" in lead_page.content()
    assert errors == []
    context.close()
    lead.close()
    assert not any(keys["summarize"] in line or keys["full"] in line for line in keyed_gateway["log"])


def test_accessibility_smoke(browser, open_gateway):
    context, page, errors = _page(browser, open_gateway)
    for path in ("/catalog", "/catalog/tools/summarize", "/catalog/tools/classify"):
        page.goto(path)
        # Every form field has a label.
        unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.id || el.name)""")
        assert unlabeled == [], (path, unlabeled)
        # One h1, and no heading skips a level.
        levels = page.evaluate("() => [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])")
        assert levels[0] == 1 and levels.count(1) == 1, (path, levels)
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), (path, levels)
        assert page.evaluate("document.documentElement.lang") == "en"
    # The try-it form works from the keyboard alone.
    page.goto("/catalog/tools/summarize")
    page.locator("#arg-text").focus()
    page.keyboard.type("Typed from the keyboard only.")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Call summarize":
            break
    assert page.evaluate("document.activeElement.textContent") == "Call summarize"
    page.keyboard.press("Enter")
    expect(page.locator("#try-cost")).to_have_text(re.compile(r"^\$"))
    assert "Typed from the keyboard only." in page.locator("#try-answer").inner_text()
    assert errors == []
    context.close()
