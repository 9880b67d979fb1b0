from __future__ import annotations

from psycopg.rows import dict_row

from tests.expected import assert_rows_match, compute


def test_features_before_any_run_is_a_clear_503(client):
    for path in ("/features", "/features/1"):
        answer = client.get(path)
        assert answer.status_code == 503
        assert "trigger a run" in answer.json()["detail"]


def test_features_serve_the_mart(client, database, settings, tmp_path):
    assert client.post("/trigger?wait=true").json()["status"] == "success"
    page = client.get("/features").json()
    assert (page["total"], page["limit"], page["offset"]) == (10, 100, 0)
    with database.connect(row_factory=dict_row) as conn:
        table = conn.execute("select * from marts.user_features order by user_id").fetchall()
    assert [r["user_id"] for r in page["items"]] == [r["user_id"] for r in table]
    assert_rows_match(page["items"], compute(settings.data_dir, tmp_path / "expected"))
    assert list(page["items"][0]) == list(table[0]), "the API serves the mart's columns, in order"

    second = client.get("/features?limit=3&offset=3").json()
    assert [r["user_id"] for r in second["items"]] == [4, 5, 6] and second["total"] == 10
    assert client.get("/features?offset=50").json() == {"items": [], "total": 10, "limit": 100, "offset": 50}
    assert client.get("/features?limit=1001").status_code == 422
    assert client.get("/features?limit=1000").status_code == 200

    alice = client.get("/features/1").json()
    assert alice["name"] == "Alice" and alice["most_common_compound_id"] == 2 and alice["tied_compound_ids"] == [2]
    missing = client.get("/features/999")
    assert missing.status_code == 404 and "999" in missing.json()["detail"]
    assert client.get("/features/abc").status_code == 422


def test_out_of_range_parameters_get_422_everywhere(client):
    huge = "100000000000000000000"
    for path in (
        f"/features?offset={huge}", f"/runs?offset={huge}", f"/features/{huge}", f"/features/-{huge}",
        f"/runs/{huge}", f"/runs/{huge}/logs", "/runs/0", "/runs/1/logs?tail=0", f"/runs/1/logs?tail={huge}",
        "/features?limit=1001", "/features?offset=-1", "/runs?limit=100000",
    ):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 422, (path, answer.status_code, answer.text)
    assert client.get("/runs?offset=2147483647").json()["items"] == []
    assert client.get("/features/9223372036854775807").status_code == 503  # in range: no mart yet
