"""The Dagster UI as an analyst sees it: a real webserver, its GraphQL API, a screenshot."""

from pathlib import Path

import httpx
import pytest

from tests.support.servers import CHROMIUM, CHROMIUM_ARGS, REPO, dagster_webserver, have_chromium

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dagster_ui")]

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName description kinds owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    isPartitioned
    partitionDefinition { description }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { name schedules { name cronSchedule } sensors { name } jobs { name } }
    }
  }
}
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    (home / "dagster").mkdir()
    env = {"VALUEMAIL_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    with dagster_webserver(env) as base:
        yield base


def test_graphql_lists_assets_checks_partitions_and_schedules(webserver):
    response = httpx.post(f"{webserver}/graphql", json={"query": QUERY}, timeout=60)
    response.raise_for_status()
    data = response.json()["data"]
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    for campaign in ("weekly", "monthly", "yearly"):
        for name in ("customer_metrics", "eligibility", "emails", "sent_emails"):
            node = nodes[f"{campaign}/{name}"]
            assert node["isPartitioned"] and node["description"] and node["groupName"]
            assert node["owners"], f"{campaign}/{name} has no owner"
    assert nodes["events"]["groupName"] == "ingest" and not nodes["events"]["isPartitioned"]
    weekly = nodes["weekly/customer_metrics"]["partitionDefinition"]["description"]
    assert "Weekly" in weekly

    (repo,) = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s["cronSchedule"] for s in repo["schedules"]}
    assert schedules["weekly_value_email_schedule"] == "0 6 * * 1"
    assert schedules["monthly_value_email_schedule"] == "0 6 1 * *"
    assert "yearly_wrapped_schedule" in schedules
    assert {"landing_files_sensor"} <= {s["name"] for s in repo["sensors"]}
    assert {"weekly_value_email", "monthly_value_email", "yearly_wrapped", "ingest"} <= {j["name"] for j in repo["jobs"]}


@pytest.mark.skipif(not have_chromium(), reason="Debian's chromium is not installed (make test installs it)")
def test_screenshot_of_the_asset_graph(webserver):
    from playwright.sync_api import sync_playwright

    out = REPO / "test-artifacts" / "dagster"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # The weekly job's asset graph: ingest → metrics → segments → … → send → KPIs.
        page.goto(f"{webserver}/locations/valuemail/jobs/weekly_value_email", wait_until="networkidle", timeout=90_000)
        # Assets are grouped by stage; the graph's context menu expands every group.  On a loaded
        # machine the graph (and the first-visit "join the community" dialog) can appear after the
        # network is idle, so the right-click is repeated until the menu shows.
        expand = page.locator("text=Expand all groups >> visible=true").first
        for _ in range(6):
            skip = page.get_by_role("button", name="Skip")
            if skip.count():
                skip.first.click()
            page.mouse.click(700, 800, button="right")
            try:
                expand.wait_for(timeout=10_000)
                break
            except Exception:  # noqa: BLE001 - the graph was not there yet; try again
                page.keyboard.press("Escape")
        expand.click()
        page.get_by_text("customer_metrics").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # let the graph finish its layout animation
        page.screenshot(path=str(out / "asset-graph.png"))
        browser.close()
    assert (out / "asset-graph.png").stat().st_size > 10_000
