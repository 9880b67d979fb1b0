"""The dbt Cloud-compatible API v3 (api/routes/cloud_v3.py): the project and environment lookups Airflow's provider
makes to find a job by names, paged as dbt Cloud pages them, errors in the envelope."""

from __future__ import annotations

V3 = "/api/v3/accounts/1"


def test_the_project_and_environment_are_found_by_name_in_both_slash_forms(client):
    for slash in ("", "/"):
        projects = client.get(f"{V3}/projects{slash}?name__icontains=Features-M", follow_redirects=False).json()
        assert [(p["id"], p["name"]) for p in projects["data"]] == [(1, "features-mart")]
        assert projects["extra"]["filters"]["limit"] == 100
        assert projects["extra"]["pagination"] == {"count": 1, "total_count": 1}
        envs = client.get(f"{V3}/projects/1/environments{slash}?name__icontains=prod", follow_redirects=False).json()
        assert [(e["id"], e["name"], e["project_id"]) for e in envs["data"]] == [(1, "production", 1)]
        assert client.get(f"{V3}/projects/1{slash}", follow_redirects=False).json()["data"]["name"] == "features-mart"
        env = client.get(f"{V3}/projects/1/environments/1{slash}", follow_redirects=False).json()["data"]
        assert env["name"] == "production"
    assert client.get(f"{V3}/projects/?name__icontains=other").json()["data"] == []
    assert client.get(f"{V3}/projects/1/environments/?name__icontains=staging").json()["data"] == []
    assert client.get(f"{V3}/projects/?offset=1").json()["extra"]["pagination"] == {"count": 0, "total_count": 1}


def test_unknown_ids_are_404_in_the_envelope(client):
    for path in ("/projects/2/", "/projects/2/environments/", "/projects/1/environments/2/"):
        answer = client.get(V3 + path)
        assert answer.status_code == 404 and answer.json()["status"]["code"] == 404, path
        assert answer.json()["data"] is None and "not found" in answer.json()["status"]["user_message"]
    assert client.get("/api/v3/accounts/2/projects/").json()["status"]["code"] == 404
