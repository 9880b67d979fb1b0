from __future__ import annotations

from tests.conftest import loose_modes


def test_docs_site_before_and_after_a_run(client, settings):
    before = client.get("/dbt-docs/")
    assert before.status_code == 404 and "no dbt docs yet" in before.json()["detail"]
    assert client.get("/dbt-docs/manifest.json").status_code == 404

    assert client.post("/trigger?wait=true").json()["status"] == "success"
    index = client.get("/dbt-docs/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "dbt" in index.text.lower()
    manifest = client.get("/dbt-docs/manifest.json").json()
    catalog = client.get("/dbt-docs/catalog.json").json()
    mart = "model.features_mart.user_features"
    assert (
        "seed.features_mart.user_experiments" in manifest["parent_map"]["model.features_mart.stg_lab__user_experiments"]
    )
    assert manifest["parent_map"][mart], "lineage of the mart"
    # the catalog describes the published schema, not the run's build schema
    assert catalog["nodes"][mart]["metadata"]["schema"] == "marts"
    assert client.get("/dbt-docs", follow_redirects=False).status_code == 307
    assert client.get("/dbt-docs/run_results.json").status_code == 422  # only the site's own files
    # run logs, the CSV copies, dbt targets and the docs site: this account only
    assert (settings.state_dir / "docs" / "current" / "index.html").is_file()
    assert not loose_modes(settings.state_dir)
