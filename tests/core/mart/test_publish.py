"""The mart table's comment (api/core/mart/publish.py): dbt's description, then the line naming the publishing run,
which read.py finds again (the API's ETag and X-Mart-Run-Id)."""

from __future__ import annotations

from api.core.mart.publish import PUBLISHED_LINE, published_comment


def test_the_comment_keeps_dbts_description_and_names_the_run_last():
    described = "One row per user.\nAll columns are documented."
    comment = published_comment(described, 7)
    assert comment == described + "\n\npublished by features-mart run 7"
    assert PUBLISHED_LINE.search(comment)[1] == "7"
    again = published_comment(comment, 12)  # a table whose comment already names a run (republished)
    assert again == described + "\n\npublished by features-mart run 12" and PUBLISHED_LINE.search(again)[1] == "12"
    assert published_comment(None, 3) == "published by features-mart run 3"
    assert PUBLISHED_LINE.search("published by features-mart run 3")[1] == "3"
    assert PUBLISHED_LINE.search("a description that mentions published by features-mart run 3 midway.") is None
