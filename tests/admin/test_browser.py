"""The issue's browser scenarios in a real Chromium, axe-core on every page, the
keyboard alone, pages without JavaScript, and the README's screenshots.

Screenshots go to `tmp_path`, or to `$PBGM_SCREENSHOTS` (`make screenshots` sets
it to `docs/images`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pbgm.access import encode_id
from pbgm.model import Permission, PolicyStatus
from pbgm.store import Grant, ServiceAccount
from tests.admin.conftest import EXAMPLES, PASSWORD, Gui, make_gui, shared_keys, url_of

pytestmark = pytest.mark.browser


@pytest.fixture
def world(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    gui = make_gui(shared_keys(tmp_path_factory))
    live_server.app = gui.app
    yield gui
    live_server.app = None


@pytest.fixture
def context(browser: Any, live_server: Any, world: Gui) -> Iterator[Any]:
    made = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    yield made
    made.close()


@contextmanager
def own_context(browser: Any, live_server: Any, *, script: bool = True) -> Iterator[Any]:
    """A context of its own (e.g. without JavaScript), closed whatever happens."""
    made = browser.new_context(base_url=live_server.url, java_script_enabled=script)
    try:
        yield made
    finally:
        made.close()


def shots(tmp_path: Path) -> Path:
    target = os.environ.get("PBGM_SCREENSHOTS")
    directory = Path(target) if target else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def sign_in(page: Any, name: str, password: str = PASSWORD) -> None:
    page.goto("/admin/sign-in")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:120] for n in v["nodes"][:3]]}
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_sign_in_and_out(context: Any):
    page = context.new_page()
    page.goto("/admin/")
    assert page.url.endswith("/admin/sign-in?next=/admin/?")
    sign_in(page, "root", "not the password")
    assert page.get_by_role("alert").inner_text() == "wrong user name or password"
    sign_in(page, "root")
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_text("you are signed out").is_visible()
    page.goto("/admin/policies")
    assert "/admin/sign-in" in page.url


def test_a_form_posted_without_its_csrf_token_is_refused(context: Any, world: Gui):
    page = context.new_page()
    sign_in(page, "root")
    page.goto(url_of("limits-bess-01"))
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.locator("#retire-reason").fill("no token")
    page.get_by_role("button", name="Retire").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("400")
    assert "csrf_failed" in page.content()
    assert world.store.get_policy("limits-bess-01").status is PolicyStatus.PUBLISHED


def test_create_limits_fix_the_errors_publish_and_see_it_audited_and_served(
    context: Any, world: Gui, tmp_path: Path
):
    page = context.new_page()
    sign_in(page, "root")
    page.get_by_role("link", name="New policy").click()
    page.get_by_label("policy id").fill("limits-bess-07")
    page.get_by_label("policy group").fill("operational-limits")
    page.locator("#f-asset_id").fill("bess-07")
    page.locator("#f-content-voltage-v_nominal_v").fill("230")
    page.locator("#f-content-voltage-v_min_pu").fill("1.12")
    page.locator("#f-content-voltage-v_max_pu").fill("1.08")
    page.locator("#f-content-power-p_min_kw").fill("-50")
    page.locator("#f-content-power-p_max_kw").fill("fifty")
    page.get_by_role("button", name="Create draft").click()
    assert "nothing was saved" in page.get_by_role("alert").first.inner_text()
    assert "fifty" in page.locator("#f-content-power-p_max_kw").input_value()
    assert (
        page.locator("#f-content-power-p_max_kw-problems")
        .inner_text()
        .startswith("$.content.power.p_max_kw")
    )
    assert page.locator(".field.invalid").count() >= 2
    page.locator("#f-content-voltage-v_min_pu").scroll_into_view_if_needed()
    page.screenshot(path=shots(tmp_path) / "editor-problems.png")
    page.locator("#f-content-voltage-v_min_pu").fill("0.9")
    page.locator("#f-content-voltage-v_max_pu").fill("1.1")
    page.locator("#f-content-power-p_max_kw").fill("50")
    page.get_by_role("button", name="Create draft").click()
    assert page.get_by_text("created `limits-bess-07` (a draft, version 1)").is_visible()
    page.locator("#publish-reason").fill("battery 7 commissioned")
    page.get_by_role("button", name="Publish").click()
    assert page.get_by_text("published `limits-bess-07`").is_visible()
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Object (policy id, user ...)").fill("limits-bess-07")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("table.audit tbody tr").first
    assert "policy.publish" in row.inner_text() and "battery 7 commissioned" in row.inner_text()
    world.store.add_service_account(
        ServiceAccount(
            "svc-b", world.store.get_user("root").password_hash or "", ("policies:read",)
        ),
        actor="t",
    )
    grant = Grant("service", "svc-b", "policy_group", "operational-limits", Permission.READ)
    world.store.add_grant(grant, actor="t")
    token = world.api_token("svc-b", ("policies:read",))
    served = context.request.get(
        "/api/v1/policy",
        params={"policy_id": encode_id("limits-bess-07"), "policy_group": "operational-limits"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert served.status == 200
    assert served.json()["document"]["content"]["power"] == {"p_min_kw": -50, "p_max_kw": 50}


def test_two_editors_and_the_second_gets_the_conflict_page_with_its_text(
    browser: Any, live_server: Any, world: Gui, tmp_path: Path
):
    first = browser.new_context(base_url=live_server.url)
    second = browser.new_context(base_url=live_server.url)
    try:
        anna, ben = first.new_page(), second.new_page()
        sign_in(anna, "root")
        sign_in(ben, "lim-admin")
        anna.goto(url_of("limits-bess-01", "/edit"))
        ben.goto(url_of("limits-bess-01", "/edit"))
        anna.locator("#f-content-power-p_max_kw").fill("200")
        anna.get_by_label("Reason for this change").fill("derated by Anna")
        anna.get_by_role("button", name="Save new version").click()
        assert anna.get_by_text("saved `limits-bess-01` as version 2").is_visible()
        ben.locator("#f-content-power-p_max_kw").fill("180")
        ben.get_by_label("description").fill("Ben's careful text")
        ben.get_by_role("button", name="Save new version").click()
        alert = ben.locator("section.conflict")
        assert "Someone saved this policy" in alert.inner_text()
        assert "root" in alert.inner_text() and "derated by Anna" in alert.inner_text()
        assert ben.locator("#f-content-power-p_max_kw").input_value() == "180"
        assert ben.get_by_label("description").input_value() == "Ben's careful text"
        ben.screenshot(path=shots(tmp_path) / "conflict.png")
        assert (
            world.store.get_policy("limits-bess-01").document["content"]["power"]["p_max_kw"] == 200
        )
        ben.get_by_role("button", name="Save over version 2").click()
        assert ben.get_by_text("saved `limits-bess-01` as version 3").is_visible()
    finally:
        first.close()
        second.close()


def test_roll_back(context: Any, world: Gui):
    document = dict(world.store.get_policy("limits-bess-01").document, description="worse")
    world.store.update_policy("limits-bess-01", document, expected_version=1, actor="t")
    page = context.new_page()
    sign_in(page, "lim-admin")
    page.goto(url_of("limits-bess-01"))
    page.get_by_label("To version").select_option("1")
    page.locator("#rollback-reason").fill("the description was wrong")
    page.get_by_role("button", name="Roll back").click()
    assert page.get_by_text(
        "rolled `limits-bess-01` back to version 1 (now version 3)"
    ).is_visible()
    record = world.store.get_policy("limits-bess-01")
    assert record.document == world.store.get_policy_version("limits-bess-01", 1).document
    assert record.published_version == 3


def test_import_a_bundle_with_a_dry_run_first(context: Any, world: Gui, tmp_path: Path):
    policies = [
        {"format": "pbgm/v1", "id": f"imported-{i}", "type": "operational_limits",
         "policy_group": "operational-limits",
         "content": {"voltage": {"v_nominal_v": 230, "v_min_pu": 0.9, "v_max_pu": 1.1}}}
        for i in range(60)
    ]  # fmt: skip
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"format": "pbgm/bundle/v1", "policies": policies}))
    page = context.new_page()
    sign_in(page, "root")
    page.get_by_role("link", name="Import / export").click()
    page.get_by_label("Bundle file").set_input_files(str(bundle))
    page.get_by_role("button", name="Preview (dry run)").click()
    assert page.locator("#plan-counts").inner_text() == "create: 60."
    revision = world.store.revision()
    assert world.store.revision() == revision  # the dry run stored nothing
    page.screenshot(path=shots(tmp_path) / "import-preview.png")
    page.get_by_label("Reason").fill("sixty new batteries")
    page.get_by_role("button", name="Apply the import").click()
    assert "Imported: create 60" in page.locator("#import-result").inner_text()  # waits
    assert page.locator("#progress li").count() == 20  # streamed about every 5 %
    assert page.locator("#progress li").last.inner_text() == "60 of 60 changes applied"
    assert world.store.get_policy("imported-59").status is PolicyStatus.PUBLISHED


def test_try_a_request_against_a_draft(context: Any, world: Gui, tmp_path: Path):
    record = world.store.get_policy("limits-bess-01")
    rules = [r for r in record.document["rules"] if r["id"] != "operators-change-limits"]
    world.store.update_policy(
        "limits-bess-01", {**record.document, "rules": rules}, expected_version=1, actor="t"
    )
    page = context.new_page()
    sign_in(page, "root")
    page.goto("/admin/try?policy_group=operational-limits")
    asked = json.loads((EXAMPLES / "requests" / "operator-writes-bess-limits.json").read_text())
    asked.pop("now")
    page.get_by_label("Request (JSON").fill(json.dumps(asked))
    page.get_by_label("Policy", exact=True).select_option("limits-bess-01")
    page.get_by_role("button", name="Decide").click()
    results = page.locator("section.answer")
    assert results.nth(0).locator(".decision").inner_text() == "Permit"
    assert "rule operators-change-limits" in results.nth(0).inner_text()
    assert results.nth(1).locator(".decision").inner_text() != "Permit"
    assert page.locator("#draft-effect").inner_text() == "The draft changes this decision."
    page.screenshot(path=shots(tmp_path) / "try-it.png", full_page=True)


def test_a_group_grant_does_not_reach_another_group_by_url(context: Any):
    page = context.new_page()
    sign_in(page, "lim-admin")
    reply = page.goto(url_of("kibernet-data-access"))
    assert reply.status == 404
    reply = page.goto(url_of("kibernet-data-access", "/edit"))
    assert reply.status == 404
    assert page.goto("/admin/users").status == 403
    assert page.goto(url_of("limits-bess-01")).status == 200


def test_a_session_expires(context: Any, world: Gui):
    page = context.new_page()
    sign_in(page, "root")
    page.goto(url_of("limits-bess-01", "/edit"))
    world.clock.advance(minutes=16)
    page.get_by_role("link", name="Policies").click()
    assert "/admin/sign-in" in page.url
    assert page.get_by_text("your session expired").is_visible()


@pytest.mark.parametrize("script", [True, False], ids=["javascript", "no-javascript"])
def test_an_edit_sent_after_the_session_expired_is_kept_over_the_sign_in(
    browser: Any, live_server: Any, world: Gui, script: bool
):
    with own_context(browser, live_server, script=script) as context:
        page = context.new_page()
        sign_in(page, "lim-admin")
        page.goto(url_of("limits-bess-01", "/edit"))
        page.locator("#f-content-power-p_max_kw").fill("123")
        page.get_by_label("description").fill("typed before the session expired")
        page.get_by_label("Reason for this change").fill("after the inspection")
        world.clock.advance(minutes=16)
        page.get_by_role("button", name="Save new version").click()
        assert "your session expired before this form was sent" in page.content()
        assert world.store.get_policy("limits-bess-01").version == 1
        assert page.get_by_label("User name").input_value() == "lim-admin"
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        if not script:  # without JavaScript the resume page waits for a click
            page.get_by_role("button", name="Back to the form with my text").click()
        page.locator("#restored").wait_for()
        assert page.locator("#f-content-power-p_max_kw").input_value() == "123"
        assert page.get_by_label("description").input_value() == "typed before the session expired"
        assert page.get_by_label("Reason for this change").input_value() == "after the inspection"
        assert world.store.get_policy("limits-bess-01").version == 1
        page.get_by_role("button", name="Save new version").click()
        assert page.get_by_text("saved `limits-bess-01` as version 2").is_visible()
        record = world.store.get_policy("limits-bess-01")
        assert record.document["content"]["power"]["p_max_kw"] == 123


def test_no_serious_accessibility_violation_on_any_page(context: Any, world: Gui, tmp_path: Path):
    page = context.new_page()
    page.goto("/admin/sign-in")
    problems = {"sign-in": axe_violations(page)}
    page.screenshot(path=shots(tmp_path) / "sign-in.png")
    sign_in(page, "root")
    pages = {
        "overview": "/admin/",
        "policies": "/admin/policies",
        "policy-groups": "/admin/policy-groups",
        "policy-group": "/admin/policy-groups/operational-limits?at=2026-05-01T00:00Z",
        "policy-limits": url_of("limits-bess-01"),
        "policy-flexoffer": url_of("fo-template-bess-01"),
        "policy-data-access": url_of("kibernet-data-access"),
        "history": url_of("limits-bess-01", "/history"),
        "diff": url_of("limits-bess-01", "/diff?from=1&to=1"),
        "editor": url_of("limits-bess-01", "/edit"),
        "new-policy": "/admin/policies/new?type=data_access",
        "try-it": "/admin/try",
        "transfer": "/admin/transfer",
        "users": "/admin/users",
        "groups": "/admin/groups",
        "service-accounts": "/admin/service-accounts",
        "grants": "/admin/grants",
        "audit": "/admin/audit",
        "flexoffers": "/admin/flexoffers",
        "validate-offer": "/admin/flexoffers/validate",
        "not-found": url_of("no-such-policy"),
    }
    for name, url in pages.items():
        page.goto(url)
        problems[name] = axe_violations(page)
        if name in ("overview", "policies", "policy-limits", "policy-group"):
            page.screenshot(path=shots(tmp_path) / f"{name}.png", full_page=name == "policy-limits")
    page.goto(url_of("limits-bess-01"))
    page.locator("#retire-reason").fill("end of the pilot")
    world.clock.advance(minutes=16)
    page.get_by_role("button", name="Retire").click()
    problems["sign-in-after-expiry"] = axe_violations(page)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("button", name="Send it again").is_visible()
    problems["resume"] = axe_violations(page)
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_keyboard_alone_signs_in_and_opens_a_policy(context: Any):
    page = context.new_page()
    page.goto("/admin/sign-in")
    page.keyboard.press("Tab")  # the skip link first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "name":
            break
    page.keyboard.type("root")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "limits-bess-01":
            break
    else:
        pytest.fail("no link to limits-bess-01 reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/admin/policies/bGltaXRzLWJlc3MtMDE$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Policy limits-bess-01"


def test_core_flows_work_without_javascript(browser: Any, live_server: Any, world: Gui):
    with own_context(browser, live_server, script=False) as context:
        page = context.new_page()
        sign_in(page, "lim-admin")
        page.goto(url_of("limits-bess-01", "/edit"))
        page.locator("#f-content-power-p_max_kw").fill("210")
        page.get_by_role("button", name="Save new version").click()
        page.locator("#publish-reason").fill("no script needed")
        page.get_by_role("button", name="Publish").click()
        record = world.store.get_policy("limits-bess-01")
        assert record.published_version == 2
        assert record.published_document["content"]["power"]["p_max_kw"] == 210


def test_script_in_a_description_is_never_run(context: Any, world: Gui):
    document = dict(
        world.store.get_policy("limits-bess-01").document,
        description='<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">',
    )
    world.store.update_policy("limits-bess-01", document, expected_version=1, actor="t")
    page = context.new_page()
    sign_in(page, "root")
    for url in (url_of("limits-bess-01"), url_of("limits-bess-01", "/edit"), "/admin/audit"):
        page.goto(url)
        assert page.evaluate("window.pwned === undefined")
    page.goto(url_of("limits-bess-01"))
    assert "<script>window.pwned = 1</script>" in page.locator("p.description").inner_text()


def test_the_accessibility_check_does_find_violations(context: Any):
    page = context.new_page()
    page.set_content('<html><body><input type="text"><img src="x.png"></body></html>')
    found = {v["id"] for v in axe_violations(page)}
    assert {"label", "image-alt"} <= found
